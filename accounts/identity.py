"""A person's legal identity (实名, issue #24): capture, verification, staff changes, full reads, key rotation.

Every write runs in a transaction and writes an IdentityEvent (actor, before and after, masked) in it; a full read
of the name and number (`identity_reveal`) needs `accounts.view_full_identity` and writes an event too. The values
are encrypted at rest (core.encryption) and shown masked everywhere else (`identity_masked`).

Verification goes through the port in core.id_verification (the console or Tencent Cloud's 二要素核验) and covers
mainland resident ID cards; the other ID types stay `pending` until staff have seen the document and set the status
with a reason. The provider is called outside any transaction, so a slow provider holds no lock.
"""

import logging
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.locks import identities_due_lock, identities_lock_after, identity_lock
from accounts.models import Identity, IdentityEvent
from core.encryption import blind_index, decrypt, encrypt, encrypted_with_newest, reencrypt
from core.id_numbers import IdNumberError, credit_code_check, id_number_check, mask_id_number, mask_legal_name
from core.id_verification import IdVerificationError, Outcome, id_verify

logger = logging.getLogger(__name__)

Status = Identity.Status
FULL_READ_PERMISSION = "accounts.view_full_identity"
NAME_MAX_LENGTH = 60
COMPANY_NAME_MAX_LENGTH = 100

# The ID number errors of core.id_numbers, translated (their code → the message shown).
ID_NUMBER_MESSAGES = {
    "required": lambda: _("Enter the ID number."),
    "format": lambda: _("This is not the form of a number of this ID type."),
    "check": lambda: _("This ID number's check digit is wrong: look for a mistyped digit."),
    "birth_date": lambda: _("The birth date in this ID number is not plausible."),
    "region": lambda: _("This ID number's region code does not exist for this ID type."),
    "type": lambda: _("Choose the type of ID."),
}


class IdentityError(ValidationError):
    """A refused identity change; the message is fit to show. Nothing was changed."""


@dataclass(frozen=True)
class MaskedIdentity:
    id_type: str
    id_type_label: str
    name: str  # 张*
    number: str  # 110***********1234
    status: str
    status_label: str
    status_reason: str
    payee_kind: str
    company_name: str
    credit_code: str


# --- Reads -----------------------------------------------------------------------------------------


def identity_for_user(user) -> Identity | None:
    if user is None or not getattr(user, "pk", None):
        return None
    return Identity.objects.filter(user=user).first()


def identity_masked(identity: Identity) -> MaskedIdentity:
    """The identity as every page shows it: name and number masked (an erased identity: empty)."""
    erased = identity.erased_at is not None
    return MaskedIdentity(
        id_type=identity.id_type,
        id_type_label=identity.get_id_type_display(),
        name="" if erased else mask_legal_name(decrypt(identity.legal_name_encrypted)),
        number="" if erased else mask_id_number(decrypt(identity.id_number_encrypted)),
        status=identity.status,
        status_label=identity.get_status_display(),
        status_reason=identity.status_reason,
        payee_kind=identity.payee_kind,
        company_name=identity.company_name,
        credit_code=identity.credit_code,
    )


def identity_is_verified(user) -> bool:
    return Identity.objects.filter(user=user, status=Status.VERIFIED).exists()


def _name_key(name: str) -> str:
    """Names compared as payment rails compare them: Unicode NFKC (full-width letters, compatibility characters),
    no spaces or middle dots (a transliterated name may be typed with or without them), case-insensitive."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    return "".join(char for char in text if not char.isspace() and char not in "·•.")


def identity_name_matches(identity: Identity, name: str) -> bool:
    """Whether `name` (a payee's real name at a payout rail) is the identity's legal name. The full name is
    compared here and never returned, so this is no full read."""
    return _name_key(decrypt(identity.legal_name_encrypted)) == _name_key(name)


def identity_company_name_matches(identity: Identity, name: str) -> bool:
    """Whether `name` (a payee's name at a payout rail) is the identity's registered company name (a business payee
    is paid to an account in the company's name, never the legal person's). Compared as the rails compare names."""
    return bool(identity.company_name) and _name_key(identity.company_name) == _name_key(name)


def identity_is_business(identity: Identity | None) -> bool:
    return identity is not None and identity.payee_kind == Identity.PayeeKind.BUSINESS


@transaction.atomic
def identity_reveal(*, identity: Identity, actor, reason: str = "") -> tuple[str, str]:
    """The full legal name and ID number, for staff holding `accounts.view_full_identity`; writes an audit row.
    Raises PermissionDenied for anyone else (and writes nothing)."""
    if not (actor and actor.is_active and actor.is_staff and actor.has_perm(FULL_READ_PERMISSION)):
        raise PermissionDenied(_("Only finance staff may see a full legal name and ID number."))
    if identity.erased_at is not None:
        return "", ""  # erased after its retention period: nothing left to read
    _event(identity, IdentityEvent.Kind.REVEALED, actor=actor, reason=reason)
    return decrypt(identity.legal_name_encrypted), decrypt(identity.id_number_encrypted)


# --- Writes ----------------------------------------------------------------------------------------


def _event(identity: Identity, kind: str, *, actor=None, actor_label="", from_status="", reason="", **detail) -> None:
    IdentityEvent.objects.create(
        identity=identity,
        kind=kind,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=identity.status if kind != IdentityEvent.Kind.REVEALED else "",
        reason=reason,
        detail=detail,
    )


def _clean(id_type: str, legal_name: str, id_number: str) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    legal_name = unicodedata.normalize("NFC", " ".join((legal_name or "").split()))
    if not legal_name:
        errors["legal_name"] = [_("Enter your legal name as it is on your ID.")]
    elif len(legal_name) > NAME_MAX_LENGTH:
        errors["legal_name"] = [_("At most %(n)d characters.") % {"n": NAME_MAX_LENGTH}]
    elif not all(char.isalpha() or char in " ·.-'" for char in legal_name):
        errors["legal_name"] = [_("A legal name has letters only (and spaces or · between names).")]
    if id_type not in Identity.IdType.values:
        errors["id_type"] = [_("Choose the type of ID.")]
        return legal_name, ""
    try:
        number = id_number_check(id_type, id_number, today=timezone.localdate()).number
    except IdNumberError as error:
        errors["id_number"] = [ID_NUMBER_MESSAGES.get(error.code, ID_NUMBER_MESSAGES["format"])()]
        number = ""
    if errors:
        raise IdentityError(errors)
    return legal_name, number


def _index(id_type: str, number: str) -> str:
    return blind_index(f"{id_type}:{number}")


def _taken() -> IdentityError:
    return IdentityError(
        {"id_number": [_("This ID is already registered to another account. Contact support if it is yours.")]},
        code="id_taken",
    )


def identity_capture(*, user, id_type: str, legal_name: str, id_number: str) -> Identity:
    """The member's own capture, once: validated, stored encrypted, then verified (outside the transaction).
    Refused if the person already has an identity (changes go through staff) or the ID belongs to someone else."""
    legal_name, number = _clean(id_type, legal_name, id_number)
    try:
        with transaction.atomic():
            if Identity.objects.filter(user=user).exists():
                raise IdentityError(
                    _("Your identity is already on file; contact support to change it."), code="already_captured"
                )
            identity = Identity.objects.create(
                user=user,
                id_type=id_type,
                legal_name_encrypted=encrypt(legal_name),
                id_number_encrypted=encrypt(number),
                id_number_index=_index(id_type, number),
            )
            _event(
                identity,
                IdentityEvent.Kind.CAPTURED,
                actor=user,
                actor_label="member",
                name=mask_legal_name(legal_name),
                number=mask_id_number(number),
                id_type=id_type,
            )
    except IntegrityError:
        if Identity.objects.filter(user=user).exists():  # the same person's second capture at the same moment
            raise IdentityError(
                _("Your identity is already on file; contact support to change it."), code="already_captured"
            ) from None
        raise _taken() from None
    return identity_verify(identity=identity)


def identity_verify(*, identity: Identity, actor=None) -> Identity:
    """Ask the verification port about a resident ID and record the answer: verified, failed (with the reason) or
    pending (no answer now: ask again later). Other ID types become pending for staff to check the document.
    An identity already verified is left as it is."""
    if identity.status == Status.VERIFIED:
        return identity
    if identity.id_type != Identity.IdType.RESIDENT_ID:
        return _set_status(
            identity,
            Status.PENDING,
            reason="awaiting staff review of the document",
            actor=actor,
            kind=IdentityEvent.Kind.CHECKED,
        )
    try:
        result = id_verify(name=decrypt(identity.legal_name_encrypted), number=decrypt(identity.id_number_encrypted))
    except IdVerificationError as error:
        if not error.transient:
            logger.error("Identity verification refused by the provider (check the settings): %s", error)
        else:
            logger.warning("Identity verification unavailable: %s", error)
        return _set_status(
            identity,
            Status.PENDING,
            reason=f"provider: {error.code or 'unavailable'}",
            actor=actor,
            kind=IdentityEvent.Kind.CHECKED,
        )
    if result.outcome == Outcome.MATCH:
        status, reason = Status.VERIFIED, ""
    elif result.outcome == Outcome.MISMATCH:
        status, reason = Status.FAILED, "name and ID number do not match"
    else:
        status, reason = Status.FAILED, "ID number or name not valid at the authority"
    return _set_status(
        identity,
        status,
        reason=reason,
        actor=actor,
        kind=IdentityEvent.Kind.CHECKED,
        reference=result.reference,
        code=result.code,
    )


@transaction.atomic
def _set_status(identity, status, *, reason, actor=None, kind, reference="", **detail) -> Identity:
    identity = identity_lock(identity.pk)
    from_status = identity.status
    identity.status = status
    identity.status_reason = reason[:200]
    identity.verified_at = timezone.now() if status == Status.VERIFIED else None
    if reference:
        identity.verification_reference = reference[:64]
    identity.save(update_fields=["status", "status_reason", "verified_at", "verification_reference", "updated_at"])
    _event(
        identity,
        kind,
        actor=actor,
        actor_label="" if actor else "system",
        from_status=from_status,
        reason=reason,
        **detail,
    )
    return identity


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise IdentityError({"reason": [_("Give the reason for the change.")]}, code="reason_required")
    return reason


def identity_set_status(*, identity: Identity, actor, status: str, reason: str) -> Identity:
    """Staff set the status after seeing the document (a permit, a passport) or to refuse it; a reason is required."""
    reason = _require_reason(reason)
    if status not in (Status.VERIFIED, Status.FAILED):
        raise IdentityError(_("Staff set an identity verified or failed."), code="bad_status")
    return _set_status(identity, status, reason=reason, actor=actor, kind=IdentityEvent.Kind.STATUS)


def identity_change(
    *, identity: Identity, actor, reason: str, id_type: str, legal_name: str, id_number: str
) -> Identity:
    """Staff correct an identity (a typo, a new passport, a legal name change), with a reason; it is then verified
    again. The event records the masked values before and after."""
    reason = _require_reason(reason)
    legal_name, number = _clean(id_type, legal_name, id_number)
    try:
        with transaction.atomic():
            identity = identity_lock(identity.pk)
            before = identity_masked(identity)
            from_status = identity.status
            identity.id_type = id_type
            identity.legal_name_encrypted = encrypt(legal_name)
            identity.id_number_encrypted = encrypt(number)
            identity.id_number_index = _index(id_type, number)
            identity.status, identity.status_reason, identity.verified_at = Status.UNVERIFIED, "", None
            identity.save()
            _event(
                identity,
                IdentityEvent.Kind.CHANGED,
                actor=actor,
                from_status=from_status,
                reason=reason,
                before={"id_type": before.id_type, "name": before.name, "number": before.number},
                after={"id_type": id_type, "name": mask_legal_name(legal_name), "number": mask_id_number(number)},
            )
    except IntegrityError:
        raise _taken() from None
    return identity_verify(identity=identity, actor=actor)


@transaction.atomic
def identity_register_business(*, identity: Identity, company_name: str, credit_code: str, actor=None) -> Identity:
    """Register the person as a business payee: its name and a valid unified social credit code (GB 32100)."""
    company_name = " ".join((company_name or "").split())
    errors: dict[str, list[str]] = {}
    if not company_name:
        errors["company_name"] = [_("Enter the company's registered name.")]
    elif len(company_name) > COMPANY_NAME_MAX_LENGTH:
        errors["company_name"] = [_("At most %(n)d characters.") % {"n": COMPANY_NAME_MAX_LENGTH}]
    try:
        code = credit_code_check(credit_code)
    except IdNumberError as error:
        if error.code == "check":
            message = _("This credit code's check character is wrong: look for a mistyped character.")
        else:
            message = _("A unified social credit code has 18 digits and capital letters (no I, O, S, V or Z).")
        errors["credit_code"] = [message]
        code = ""
    if errors:
        raise IdentityError(errors)
    if Identity.objects.filter(credit_code=code).exclude(pk=identity.pk).exists():
        raise IdentityError({"credit_code": [_("This credit code is already registered to another account.")]})
    identity = identity_lock(identity.pk)
    identity.payee_kind = Identity.PayeeKind.BUSINESS
    identity.company_name, identity.credit_code = company_name, code
    identity.save(update_fields=["payee_kind", "company_name", "credit_code", "updated_at"])
    _event(identity, IdentityEvent.Kind.BUSINESS, actor=actor, company_name=company_name, credit_code=code)
    return identity


@transaction.atomic
def identity_set_individual(*, identity: Identity, actor, reason: str) -> Identity:
    """Staff set a business payee back to an individual (the company was deregistered, registered by mistake), with
    a reason; the event records the company before. The member cannot do this: from then on their withdrawals have
    individual income tax withheld, while withdrawals already requested as a business still need their invoice."""
    reason = _require_reason(reason)
    identity = identity_lock(identity.pk)
    if identity.payee_kind != Identity.PayeeKind.BUSINESS:
        raise IdentityError(_("This person is not registered as a business payee."), code="not_business")
    before = {
        "payee_kind": identity.payee_kind,
        "company_name": identity.company_name,
        "credit_code": identity.credit_code,
    }
    identity.payee_kind = Identity.PayeeKind.INDIVIDUAL
    identity.company_name, identity.credit_code = "", ""
    identity.save(update_fields=["payee_kind", "company_name", "credit_code", "updated_at"])
    _event(
        identity,
        IdentityEvent.Kind.CHANGED,
        actor=actor,
        from_status=identity.status,
        reason=reason,
        before=before,
        after={"payee_kind": identity.payee_kind},
    )
    return identity


def identities_reencrypt(*, reindex: bool = False, batch_size: int = 500) -> int:
    """Re-encrypt with the newest key every identity that some older key encrypted (after a key rotation); with
    `reindex`, also recompute the blind index (after IDENTITY_INDEX_KEY changed). Each batch is its own
    transaction with its rows locked, so it can run while the site runs; safe to run again. Returns rows changed."""
    changed = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            rows = identities_lock_after(last_pk, batch_size)
            if not rows:
                return changed
            for identity in rows:
                if identity.erased_at is not None:
                    continue  # nothing left to encrypt
                fields = []
                for field in ("legal_name_encrypted", "id_number_encrypted"):
                    token = getattr(identity, field)
                    if not encrypted_with_newest(token):
                        setattr(identity, field, reencrypt(token))
                        fields.append(field)
                if reindex:
                    index = _index(identity.id_type, decrypt(identity.id_number_encrypted))
                    if index != identity.id_number_index:
                        identity.id_number_index = index
                        fields.append("id_number_index")
                if fields:
                    identity.save(update_fields=fields)
                    changed += 1
            last_pk = rows[-1].pk


# --- Kept after the account closed, then erased (docs/privacy.md, "Closing an account") -----------------------------


def identity_retain(*, identity: Identity, until) -> Identity:
    """Keep the identity of a closed account until `until` (the records the law requires), then let
    `identities_erase_due` erase it. In the caller's transaction; writes an IdentityEvent. Idempotent: an identity
    already marked keeps its date."""
    identity = identity_lock(identity.pk)
    if identity.erase_after is not None or identity.erased_at is not None:
        return identity
    identity.erase_after = until
    identity.save(update_fields=["erase_after", "updated_at"])
    _event(identity, IdentityEvent.Kind.RETAINED, actor_label="system", erase_after=until.isoformat())
    return identity


def identities_erase_due(*, now=None, batch_size: int = 200) -> int:
    """Erase the legal name and the ID number of every identity whose retention ended (`erase_after` passed); return
    how many were erased. Each batch is its own transaction with its rows locked; an identity erased already is never
    read again, so running twice (or two runs at once) erases nothing twice.

    What stays: the row (the withdrawals' tax withholding points at the user, not at it), the ID type, the status and
    the dates, and the IdentityEvents (masked values only). The blind index becomes `erased:<id>`: the number can no
    longer be matched, so the person may one day register again."""
    now = now or timezone.now()
    erased = 0
    while True:
        with transaction.atomic():
            due = Identity.objects.filter(erase_after__lte=now, erased_at__isnull=True)
            rows = identities_due_lock(due, batch_size)
            if not rows:
                return erased
            for identity in rows:
                identity.legal_name_encrypted = ""
                identity.id_number_encrypted = ""
                identity.id_number_index = f"erased:{identity.pk}"
                identity.verification_reference = ""
                identity.status_reason = ""
                identity.erased_at = now
                identity.save(
                    update_fields=[
                        "legal_name_encrypted",
                        "id_number_encrypted",
                        "id_number_index",
                        "verification_reference",
                        "status_reason",
                        "erased_at",
                        "updated_at",
                    ]
                )
                _event(identity, IdentityEvent.Kind.ERASED, actor_label="system", erase_after=str(identity.erase_after))
                erased += 1
