"""Withdrawals and payouts (SPEC §8): every change locks, checks the state machine, writes an event.

Money leaves a balance only under a lock on the member's MemberWallet row, taken before the balance is
computed, so two withdrawals at the same moment cannot both pass. A payout is sent with the
withdrawal's idempotency key and its result applied only if the withdrawal is still `processing`, so a
batch sent twice (or by two workers at once) pays nobody twice.
"""

import logging
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.approvals import second_approval_needed
from accounts.identity import (
    identity_company_name_matches,
    identity_for_user,
    identity_is_business,
    identity_name_matches,
)
from commissions.services import commission_entries_mark_paid
from commissions.services.risk import risk_score_withdrawal, withdrawal_is_held
from core.masking import mask_name
from core.money import CENT
from payouts.locks import transfer_lock, wallets_lock, withdrawal_lock, withdrawals_lock, withholding_rule_lock
from payouts.models import (
    Invoice,
    PayoutAccount,
    PayoutBatch,
    TaxWithholding,
    Transfer,
    Withdrawal,
    WithdrawalEvent,
    WithholdingRule,
    mask,
)
from payouts.providers import PayoutResult, TransferState, get_payout_provider
from payouts.selectors import (
    OPEN,
    accepted_invoice,
    adjustment_conflict,
    invoice_missing,
    member_balance,
    members_adjusted,
    members_tax_history,
    withholding_rule_in_force,
)
from payouts.signals import withdrawals_changed
from payouts.tax_calculations import PriorPayment, TaxHistory, business_invoice, withhold
from referrals.models import Member
from shops.models import WebhookEvent
from shops.payments.base import ProviderError, WebhookRejected

logger = logging.getLogger(__name__)

Status = Withdrawal.Status
TRANSITIONS = {
    Status.REQUESTED: {Status.APPROVED, Status.REJECTED, Status.CANCELLED},
    Status.APPROVED: {Status.PROCESSING},
    Status.PROCESSING: {Status.PAID, Status.FAILED},
}
ACCOUNT_FIELDS = {
    PayoutAccount.Method.BANK: ("bank_name", "account_number"),
    PayoutAccount.Method.ALIPAY: ("alipay_account",),
    PayoutAccount.Method.WECHAT: ("wechat_id",),
}


class PayoutError(ValidationError):
    """A refused payout change; the message is fit to show. Nothing was changed."""


# --- Identity (issue #24): money goes only to a verified person, and only to an account in their legal name -------


def _identity_refusal(member, *, method: str, holder_name: str, for_withdrawal: bool) -> PayoutError | None:
    """Why the member may not withdraw (or save this payout account) on identity grounds, or None.

    A withdrawal needs a verified identity (code `identity_unverified`; the pages link to the identity page). Every
    rail checks the payee's real name (Alipay's payee name, WeChat Pay's user_name, the bank's 户名), so the payout
    account's holder must be the verified legal name (code `payee_name_mismatch`): checked when the account is saved
    once an identity is on file, and again at each withdrawal (for an account saved before the identity)."""
    identity = identity_for_user(member.user)
    if for_withdrawal and (identity is None or not identity.is_verified):
        return PayoutError(
            _("Verify your identity (legal name and ID) before you withdraw: the law requires it for payouts."),
            code="identity_unverified",
        )
    if identity_is_business(identity):
        return _business_account_refusal(identity, method=method, holder_name=holder_name)
    if identity is not None and not identity_name_matches(identity, holder_name):
        return PayoutError(
            {"holder_name": [_("The payout account's real name must be your verified legal name.")]},
            code="payee_name_mismatch",
        )
    return None


def _business_account_refusal(identity, *, method: str, holder_name: str) -> PayoutError | None:
    """A business payee is paid to an account in the company's name (the rails check the payee's name against it):
    a corporate bank account (对公账户) or a corporate Alipay account (企业支付宝) whose name is the company's. WeChat
    Pay's transfers to 零钱 pay individuals only (code `business_wechat`)."""
    if method == PayoutAccount.Method.WECHAT:
        return PayoutError(
            {
                "method": [
                    _(
                        "WeChat Pay transfers go to a person's WeChat balance, so a business cannot be paid by WeChat "
                        "Pay: choose a bank account or an Alipay account in the company's name."
                    )
                ]
            },
            code="business_wechat",
        )
    if not identity_company_name_matches(identity, holder_name):
        return PayoutError(
            {
                "holder_name": [
                    _("A business is paid to an account in its own name: the holder must be “%(company)s”.")
                    % {"company": identity.company_name}
                ]
            },
            code="payee_name_mismatch",
        )
    return None


# --- Accounts --------------------------------------------------------------------------------------


@transaction.atomic
def payout_account_save(*, member, method: str, holder_name: str, **details) -> PayoutAccount:
    """Create or replace the member's payout account; the fields the method needs are required."""
    if method not in PayoutAccount.Method.values:
        raise PayoutError({"method": [_("Choose bank transfer, Alipay or WeChat Pay.")]})
    values = {name: (details.get(name) or "").strip() for name in ("bank_name", "bank_branch", "account_number",
                                                                    "alipay_account", "wechat_id")}  # fmt: skip
    values["account_number"] = values["account_number"].replace(" ", "")
    errors = {}
    if not (holder_name or "").strip():
        errors["holder_name"] = [_("Enter the account holder's real name.")]
    for name in ACCOUNT_FIELDS[method]:
        if not values[name]:
            errors[name] = [_("Required for this method.")]
    if (
        method == PayoutAccount.Method.BANK
        and values["account_number"]
        and not (values["account_number"].isdigit() and 12 <= len(values["account_number"]) <= 19)
    ):
        errors["account_number"] = [_("A bank card number has 12 to 19 digits.")]
    for name, value in [("holder_name", holder_name or ""), *values.items()]:
        limit = PayoutAccount._meta.get_field(name).max_length
        if len(value.strip()) > limit:
            errors.setdefault(name, []).append(_("At most %(n)d characters.") % {"n": limit})
    if errors:
        raise PayoutError(errors)
    if refusal := _identity_refusal(member, method=method, holder_name=holder_name, for_withdrawal=False):
        raise refusal
    # Keep only what the method uses, so a masked display never shows a stale number of another method.
    for name in values:
        if name not in ACCOUNT_FIELDS[method] and name != "bank_branch":
            values[name] = ""
    if method != PayoutAccount.Method.BANK:
        values["bank_branch"] = ""
    if method != PayoutAccount.Method.WECHAT:
        values["wechat_openid"] = ""  # a bound WeChat payee stays bound while WeChat Pay stays the method
    account, _created = PayoutAccount.objects.update_or_create(
        member=member, defaults={"method": method, "holder_name": holder_name.strip(), **values}
    )
    return account


def payout_account_remove(*, member) -> dict | None:
    """Delete the member's payout account (their account closes: members.services.member_close); return what it was,
    masked (for the closure's audit row), or None if there was none. Withdrawals keep the account they were paid to
    (`Withdrawal.account`, the payment's record). In the caller's transaction, which holds the member's wallet lock,
    so no withdrawal is requested meanwhile. Idempotent."""
    account = PayoutAccount.objects.filter(member=member).first()
    if account is None:
        return None
    removed = {"method": account.method, "identifier": account.masked_identifier}
    account.delete()
    return removed


OPENID_MAX_LENGTH = 64


@transaction.atomic
def payout_account_bind_wechat(*, member, openid: str) -> PayoutAccount:
    """Bind where WeChat Pay transfers to the member go: their openid under the shop's WeChat AppID, as WeChat's
    OAuth gives it (or finance staff enter it). The member's payout account must be WeChat Pay; withdrawals already
    requested keep the account they were requested for."""
    openid = (openid or "").strip()
    if not (openid and len(openid) <= OPENID_MAX_LENGTH and openid.isascii() and openid.isprintable()):
        raise PayoutError({"wechat_openid": [_("Enter the openid WeChat gives for this member.")]})
    account = PayoutAccount.objects.filter(member=member).first()
    if account is None or account.method != PayoutAccount.Method.WECHAT:
        raise PayoutError(_("Choose WeChat Pay as the payout method first."), code="not_wechat")
    account.wechat_openid = openid
    account.save(update_fields=["wechat_openid", "updated_at"])
    return account


# --- Withdrawals ------------------------------------------------------------------------------------


def _announce(changes: list[tuple[int, str, str]]) -> None:
    """Tell the apps above, after the commit, which withdrawals moved (one send per transaction)."""
    if changes:
        transaction.on_commit(partial(withdrawals_changed.send, sender=Withdrawal, changes=changes))


def _event(withdrawal: Withdrawal, from_status: str, *, actor=None, actor_label="", reason="") -> None:
    WithdrawalEvent.objects.create(
        withdrawal=withdrawal,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=withdrawal.status,
        amount=withdrawal.amount,
        reason=reason,
    )


def _move(withdrawal: Withdrawal, to_status: str, *, actor=None, actor_label="", note="", **fields) -> Withdrawal:
    from_status = withdrawal.status
    if to_status not in TRANSITIONS.get(from_status, set()):
        raise PayoutError(
            _("A withdrawal that is “%(from)s” cannot become “%(to)s”.")
            % {"from": Status(from_status).label, "to": Status(to_status).label},
            code="illegal_transition",
        )
    withdrawal.status = to_status
    for name, value in fields.items():
        setattr(withdrawal, name, value)
    withdrawal.save(update_fields=["status", *fields])
    _event(withdrawal, from_status, actor=actor, actor_label=actor_label, reason=note)
    _announce([(withdrawal.pk, from_status, to_status)])
    return withdrawal


def _clean_amount(amount) -> Decimal:
    try:
        amount = Decimal(str(amount).strip())
        whole_cents = amount.is_finite() and amount == amount.quantize(CENT) and abs(amount) < Decimal("1e12")
    except (InvalidOperation, ValueError) as error:
        raise PayoutError({"amount": [_("Enter an amount such as 50.00.")]}) from error
    if not whole_cents:
        raise PayoutError({"amount": [_("Enter an amount in whole cents, such as 50.00.")]})
    return amount


@transaction.atomic
def withdrawal_request(*, member, amount) -> Withdrawal:
    """Ask to withdraw `amount`. Locks the member's wallet, then checks minimum, balance, account, open count.

    Requests up to WITHDRAWAL_AUTO_APPROVE_MAX are approved at once.
    """
    amount = _clean_amount(amount)
    if amount < settings.WITHDRAWAL_MINIMUM:
        raise PayoutError({"amount": [_("The minimum withdrawal is %(min)s.") % {"min": settings.WITHDRAWAL_MINIMUM}]})
    wallets_lock([member.pk])
    account = PayoutAccount.objects.filter(member=member).first()
    if account is None:
        raise PayoutError(_("Add a payout account first."), code="no_account")
    refusal = _identity_refusal(member, method=account.method, holder_name=account.holder_name, for_withdrawal=True)
    if refusal:
        raise refusal
    if Withdrawal.objects.filter(member=member, status__in=OPEN).count() >= settings.WITHDRAWAL_MAX_OPEN:
        raise PayoutError(
            _("You have %(n)d withdrawals in progress; wait for one to finish.") % {"n": settings.WITHDRAWAL_MAX_OPEN},
            code="too_many_open",
        )
    available = member_balance(member).withdrawable
    if amount > available:
        raise PayoutError({"amount": [_("You can withdraw at most %(available)s.") % {"available": max(available, 0)}]})
    snapshot, payee_kind = account.snapshot(), Withdrawal.PayeeKind.INDIVIDUAL
    identity = identity_for_user(member.user)
    if identity_is_business(identity):  # paid against the company's invoice (docs/tax.md, "Business payees")
        payee_kind = Withdrawal.PayeeKind.BUSINESS
        snapshot.update(company_name=identity.company_name, credit_code=identity.credit_code)
    withdrawal = Withdrawal.objects.create(
        member=member, amount=amount, account=snapshot, payee_kind=payee_kind, idempotency_key=uuid.uuid4().hex
    )
    _event(withdrawal, "", actor=member.user, actor_label="member")
    # A business's withdrawal waits for its invoice, so it is never approved at once. Nor is one above
    # FOUR_EYES_THRESHOLD (it needs two people: payouts/approvals.py), nor a flagged one (issue #25, the payout rule:
    # it waits for staff, however small).
    held = risk_score_withdrawal(member=member, withdrawal_id=withdrawal.pk) is not None
    if (
        amount <= settings.WITHDRAWAL_AUTO_APPROVE_MAX
        and payee_kind == Withdrawal.PayeeKind.INDIVIDUAL
        and not second_approval_needed(amount)
        and not held
    ):
        _move(withdrawal, Status.APPROVED, actor_label="auto-approval", decided_at=timezone.now())
    return withdrawal


@transaction.atomic
def withdrawal_cancel(*, withdrawal: Withdrawal, member) -> Withdrawal:
    """The member takes back a request that is not approved yet."""
    withdrawal = withdrawal_lock(withdrawal.pk)
    if withdrawal.member_id != member.pk:
        raise PayoutError(_("Not your withdrawal."), code="not_yours")
    if withdrawal.status != Status.REQUESTED:
        raise PayoutError(_("Only a request that is not approved yet can be cancelled."), code="not_cancellable")
    return _move(withdrawal, Status.CANCELLED, actor=member.user, actor_label="member", decided_at=timezone.now())


def _invoice_refusal(withdrawal: Withdrawal) -> PayoutError:
    return PayoutError(
        _(
            "Withdrawal %(id)s is paid to a business: it needs an accepted invoice before it is approved or sent "
            "(Payouts → Invoices)."
        )
        % {"id": withdrawal.pk},
        code="invoice_missing",
    )


def withdrawal_approver_refusal(*, withdrawal: Withdrawal, actor) -> PayoutError | None:
    """Why `actor` may not approve `withdrawal` (first or second approval), or None: they adjusted the member's
    balance in the last ADJUSTMENT_CONFLICT_DAYS (code `adjusted_recently`; four eyes, docs/compliance.md). The one
    who puts money into a balance is never the one who lets it out."""
    if adjustment_conflict(user=actor, member_id=withdrawal.member_id):
        return PayoutError(
            _(
                "You adjusted this member's balance in the last %(days)d days, so another finance user must approve "
                "their withdrawals."
            )
            % {"days": settings.ADJUSTMENT_CONFLICT_DAYS},
            code="adjusted_recently",
        )
    return None


@transaction.atomic
def withdrawal_approve(*, withdrawal: Withdrawal, actor) -> Withdrawal:
    """Approve a requested withdrawal. A business payee's needs its invoice accepted first (code `invoice_missing`),
    one under risk review its flag resolved (code `under_review`), and the approver must not have adjusted the
    member's balance lately (code `adjusted_recently`); nothing changes then. Locks the withdrawal, so an invoice
    cannot be rejected while it is approved."""
    refusal = withdrawal_approver_refusal(withdrawal=withdrawal, actor=actor)
    if refusal:
        raise refusal
    if withdrawal_is_held(withdrawal.pk):
        raise PayoutError(_("This withdrawal is under risk review; resolve its flag first."), code="under_review")
    withdrawal = withdrawal_lock(withdrawal.pk)
    if withdrawal.status == Status.REQUESTED and withdrawal.is_business and accepted_invoice(withdrawal.pk) is None:
        raise _invoice_refusal(withdrawal)
    return _move(withdrawal, Status.APPROVED, actor=actor, actor_label="staff", decided_at=timezone.now())


@transaction.atomic
def withdrawal_reject(*, withdrawal: Withdrawal, actor, reason: str) -> Withdrawal:
    reason = (reason or "").strip()
    if not reason:
        raise PayoutError({"reason": [_("Give the member a reason.")]}, code="reason_required")
    return _move(
        withdrawal_lock(withdrawal.pk),
        Status.REJECTED,
        actor=actor,
        actor_label="staff",
        note=reason,
        decided_at=timezone.now(),
        reason=reason,
    )


# --- Batches -----------------------------------------------------------------------------------------


SEND_CHUNK = 500


@transaction.atomic
def payout_batch_create(*, provider_name: str | None = None, actor=None, limit: int = 10_000) -> PayoutBatch | None:
    """Group approved withdrawals (up to `limit`) into a new batch, all `processing`. None if there are none.

    A business payee's withdrawal without an accepted invoice is left out (it stays approved; its invoice was
    rejected after the approval): `approved_withdrawals_missing_invoice` counts them for the admin's message."""
    provider_name = provider_name or settings.PAYOUT_PROVIDER
    # A banned (suspended) member's approved withdrawals are not sent (issue #25): they wait for staff.
    sendable = (
        Withdrawal.objects.filter(status=Status.APPROVED)
        .exclude(invoice_missing())
        .exclude(Exists(Member.objects.filter(pk=OuterRef("member_id"), status=Member.Status.SUSPENDED)))
    )
    approved = withdrawals_lock(sendable, "pk", "amount", limit=limit, skip_locked=True)
    if approved:
        # The locking statement judged the invoices and members as they were when it began: an invoice rejected
        # (which locks the withdrawal, then commits) while it waited for that row passes its test all the same,
        # since PostgreSQL re-checks only the locked row itself. Asked again now that the rows are ours, a new
        # statement sees every rejection or ban that committed; none can come after.
        still = set(sendable.filter(pk__in=[pk for pk, _amount in approved]).values_list("pk", flat=True))
        approved = [row for row in approved if row[0] in still]
    if not approved:
        return None
    batch = PayoutBatch.objects.create(provider=provider_name, created_by=actor)
    Withdrawal.objects.filter(pk__in=[pk for pk, _amount in approved]).update(status=Status.PROCESSING, batch=batch)
    WithdrawalEvent.objects.bulk_create(
        [
            WithdrawalEvent(
                withdrawal_id=pk,
                actor=actor,
                actor_label="staff" if actor else "system",
                from_status=Status.APPROVED,
                to_status=Status.PROCESSING,
                amount=amount,
            )
            for pk, amount in approved
        ],
        batch_size=2000,
    )
    _announce([(pk, Status.APPROVED, Status.PROCESSING) for pk, _amount in approved])
    return batch


def payout_batch_send(*, batch: PayoutBatch) -> dict[str, int]:
    """Send every still-processing withdrawal of the batch; apply each answer once. Safe to run twice.

    Before a chunk is sent, the income tax withheld from each withdrawal is computed and recorded once
    (withdrawals_tax_withhold): the rail is sent the net amount.

    Works in chunks of SEND_CHUNK: one provider call (with every withdrawal's idempotency key) and one
    transaction per chunk, which records the transfers the rails made and applies the answers only to withdrawals
    still `processing`. A withdrawal whose transfer a rail has made is not sent again: payout_transfers_sync follows
    it. One the rail did not answer for (a crash, a timeout) is sent again with the same key, which the rail answers
    with the transfer it made the first time, if it made one: nobody is paid twice.
    """
    provider = get_payout_provider(batch.provider)
    outcome = {"paid": 0, "failed": 0, "pending": 0}
    waiting = batch.withdrawals.filter(status=Status.PROCESSING, transfer__isnull=True)
    ids = list(waiting.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), SEND_CHUNK):
        chunk = ids[start : start + SEND_CHUNK]
        withdrawals_tax_withhold(withdrawal_ids=chunk)
        withdrawals = list(
            Withdrawal.objects.filter(pk__in=chunk, status=Status.PROCESSING)
            .select_related("withholding")
            .order_by("pk")
        )
        results = provider.send_many(withdrawals)
        for status, count in _apply_results(results, actor_label=provider.name).items():
            outcome[status] += count
    _batch_close_if_done(batch)
    return outcome


@transaction.atomic
def _apply_results(results: dict[int, PayoutResult], *, actor_label: str) -> dict[str, int]:
    """A provider's answers ({withdrawal id: PayoutResult}): the transfers they carry are recorded, then the final
    ones (paid, failed) are applied to the withdrawals still processing; the rest stay processing."""
    states = {pk: result.transfer for pk, result in results.items() if result.transfer is not None}
    if states:
        now = timezone.now()
        Transfer.objects.bulk_create(
            [
                Transfer(
                    withdrawal_id=pk,
                    rail=state.rail,
                    number=state.number,
                    state=state.state,
                    rail_reference=state.rail_reference,
                    package_info=state.package_info,
                    fail_reason=state.fail_reason,
                    confirm_by=state.confirm_by,
                    created_at=now,
                    updated_at=now,
                )
                for pk, state in states.items()
            ],
            update_conflicts=True,
            unique_fields=["number"],
            update_fields=["state", "rail_reference", "package_info", "fail_reason", "confirm_by", "updated_at"],
            batch_size=1000,
        )
    answered = {pk: result for pk, result in results.items() if result.status != "pending"}
    counts = {"paid": 0, "failed": 0, "pending": len(results) - len(answered)}
    counts.update(_record_results(answered, actor_label=actor_label))
    return counts


@transaction.atomic
def withdrawal_record_result(
    *, withdrawal: Withdrawal, status: str, reference: str = "", reason: str = "", actor=None, actor_label=""
) -> bool:
    """Apply a provider's (or staff's) answer: paid or failed. Returns False if it was applied already."""
    if status not in (Status.PAID, Status.FAILED):
        raise PayoutError(_("A result is paid or failed."), code="bad_result")
    result = PayoutResult(status=status, reference=reference, reason=reason)
    applied = _record_results({withdrawal.pk: result}, actor=actor, actor_label=actor_label)
    if not sum(applied.values()):
        return False
    batch_id = Withdrawal.objects.filter(pk=withdrawal.pk).values_list("batch_id", flat=True).first()
    if batch_id:
        transaction.on_commit(partial(_batch_close_if_done, PayoutBatch(pk=batch_id)))
    return True


@transaction.atomic
def _record_results(results: dict, *, actor=None, actor_label: str = "") -> dict[str, int]:
    """Apply answers ({withdrawal id: PayoutResult}) to the withdrawals still processing, in one transaction.

    Locks those withdrawals (id order), then the paid members' wallets (id order), so the commission
    entries a payout covers are labelled by one writer per member at a time.
    """
    counts = {"paid": 0, "failed": 0}
    locked = withdrawals_lock(Withdrawal.objects.filter(pk__in=list(results), status=Status.PROCESSING))
    if not locked:
        return counts
    now = timezone.now()
    events, paid_members, failed = [], set(), []
    for withdrawal in locked:
        result = results[withdrawal.pk]
        withdrawal.status = result.status
        withdrawal.provider_reference = result.reference
        if result.status == Status.PAID:
            withdrawal.paid_at = now
            paid_members.add(withdrawal.member_id)
        else:
            withdrawal.failed_at = now
            withdrawal.reason = result.reason or _("The payout provider refused the transfer.")
            failed.append(withdrawal.pk)
        counts[result.status] += 1
        events.append(
            WithdrawalEvent(
                withdrawal=withdrawal,
                actor=actor,
                actor_label=actor_label,
                from_status=Status.PROCESSING,
                to_status=withdrawal.status,
                amount=withdrawal.amount,
                reason=withdrawal.reason if withdrawal.status == Status.FAILED else "",
            )
        )
    Withdrawal.objects.bulk_update(locked, ["status", "provider_reference", "paid_at", "failed_at", "reason"])
    WithdrawalEvent.objects.bulk_create(events)
    if failed:  # the whole gross is back in the balance: the tax computed on it counts no more
        TaxWithholding.objects.filter(withdrawal_id__in=failed).update(status=TaxWithholding.Status.VOID)
    _announce([(withdrawal.pk, Status.PROCESSING, withdrawal.status) for withdrawal in locked])
    if paid_members:
        members = sorted(paid_members)
        wallets_lock(members)
        paid_out = dict(
            Withdrawal.objects.filter(member_id__in=members, status=Status.PAID)
            .values_list("member_id")
            .annotate(total=Sum("amount"))
        )
        # Staff adjustments moved the balance too (docs/balance.md): a debit took some commission away as a payout
        # does, a credit was money that payouts spent instead of commission.
        adjusted = members_adjusted(members)
        covered = {member_id: total - adjusted.get(member_id, 0) for member_id, total in paid_out.items()}
        commission_entries_mark_paid(paid_out_by_member=covered, at=now)
    return counts


def _batch_close_if_done(batch: PayoutBatch) -> None:
    if not batch.withdrawals.filter(status=Status.PROCESSING).exists():
        PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.PROCESSING).update(
            status=PayoutBatch.Status.DONE, completed_at=timezone.now()
        )


def payout_batches_run(*, provider_name: str | None = None) -> int:
    """Periodic: batch what is approved and send it; also resend batches still processing. Returns batches sent."""
    batch = payout_batch_create(provider_name=provider_name)
    open_batches = PayoutBatch.objects.filter(status=PayoutBatch.Status.PROCESSING).order_by("pk")
    sent = 0
    for open_batch in open_batches:
        payout_batch_send(batch=open_batch)
        sent += 1
    return sent if sent else int(batch is not None)


# --- Income tax withheld at payout (docs/tax.md) ----------------------------------------------------------------


@transaction.atomic
def withdrawals_tax_withhold(*, withdrawal_ids, at: datetime | None = None) -> dict[int, TaxWithholding]:
    """Compute and record the income tax withheld from each of these withdrawals that is still processing and has
    none yet, under the rule in force at `at` (now), dated `at`'s local day. Returns {withdrawal id: its entry}.

    Idempotent: a withdrawal's entry is written once (one-to-one; an existing one is returned as it is), so a batch
    sent twice, or by two workers at once, withholds once. Locks the withdrawals (id order), then their members'
    wallets (id order), so one member's computations run one at a time and each sees the ones before it, several
    payouts of a month included.
    """
    at = at or timezone.now()
    on = timezone.localdate(at)
    locked = withdrawals_lock(Withdrawal.objects.filter(pk__in=list(withdrawal_ids), status=Status.PROCESSING))
    if not locked:
        return {}
    wallets_lock({withdrawal.member_id for withdrawal in locked})
    entries = TaxWithholding.objects.in_bulk([withdrawal.pk for withdrawal in locked], field_name="withdrawal_id")
    rule, method = withholding_rule_in_force(at)
    todo = [withdrawal for withdrawal in locked if withdrawal.pk not in entries]
    history = members_tax_history({withdrawal.member_id for withdrawal in todo}, on.year)
    invoices = {
        invoice.withdrawal_id: invoice
        for invoice in Invoice.objects.filter(
            withdrawal__in=[withdrawal for withdrawal in todo if withdrawal.is_business],
            status=Invoice.Status.ACCEPTED,
        )
    }
    created = []
    for withdrawal in todo:  # id order: a member's later withdrawal sees the earlier ones of this call
        invoice = invoices.get(withdrawal.pk)
        if withdrawal.is_business:
            # Paid against the business's invoice: no individual income tax, and not in the person's history.
            # (Without an accepted invoice it could not have been approved or batched; check_ledger flags it if so.)
            result = business_invoice(withdrawal.amount, on, TaxHistory())
        else:
            payments = history.setdefault(withdrawal.member_id, [])
            result = withhold(method, withdrawal.amount, on, TaxHistory(payments=tuple(payments)))
            payments.append(PriorPayment(on=on, gross=result.gross, tax=result.tax))
        created.append(
            TaxWithholding(
                withdrawal=withdrawal,
                member_id=withdrawal.member_id,
                rule=None if withdrawal.is_business else rule,
                method=result.method,
                invoice=invoice,
                paid_on=on,
                gross=result.gross,
                tax=result.tax,
                net=result.net,
                income=result.income,
                expenses=result.expenses,
                deduction=result.deduction,
                taxable=result.taxable,
                rate=result.rate,
                quick_deduction=result.quick_deduction,
                tax_due=result.tax_due,
                withheld_before=result.withheld_before,
                created_at=at,
            )
        )
    # No conflict is possible: the withdrawals are locked and had none. A unique violation would be a bug: it raises,
    # and nothing of this call is kept.
    TaxWithholding.objects.bulk_create(created, batch_size=1000)
    entries.update({entry.withdrawal_id: entry for entry in created})
    return entries


@transaction.atomic
def withholding_rule_activate(*, rule: WithholdingRule, actor, effective_from: datetime | None = None):
    """Activate a draft rule from `effective_from` (now by default; not in the past, so no payout already made
    changes rule). Records who and when; an activated rule never changes again. PayoutError if refused."""
    rule = withholding_rule_lock(rule.pk)
    now = timezone.now()
    effective_from = effective_from or now
    if rule.is_activated:
        raise PayoutError(_("This rule is already activated."), code="already_activated")
    if effective_from < now - timedelta(minutes=1):
        raise PayoutError(_("A rule cannot come into force in the past."), code="in_the_past")
    rule.is_activated = True
    rule.effective_from = effective_from
    rule.activated_at = now
    rule.activated_by = actor
    rule.save(update_fields=["is_activated", "effective_from", "activated_at", "activated_by"])
    logger.info("withholding rule v%s (%s) activated from %s by %s", rule.version, rule.method, effective_from, actor)
    return rule


# --- Transfers at the payout rails -----------------------------------------------------------------------------
# A rail (WeChat Pay 商家转账, Alipay transfers) makes a transfer per withdrawal and says later how it ended: by a
# notification (payout_transfer_notification_receive) or when asked (payout_transfers_sync). Both apply the rail's
# word through payout_transfer_apply: the transfer's state is recorded, and a final one pays the withdrawal or fails
# it (the money back in the member's balance, the reason shown to them and to finance).

# The rails' final words: nothing changes a transfer after one of these.
TRANSFER_FINAL_STATES = ("SUCCESS", "FAIL", "CANCELLED", "REFUND", "CLOSED")
TRANSFER_WAITING_STATES = ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM")  # WeChat Pay: not confirmed by the payee
EXPIRED = "OVERDUE_CLOSE"  # WeChat Pay's code for a bill closed unconfirmed; ours too when we cancel one for it


@transaction.atomic
def payout_transfer_apply(*, state: TransferState, actor_label: str) -> str:
    """Apply a rail's word on a transfer (a verified notification, or a query's answer): record its state and, when
    it is final, pay the withdrawal or fail it (the money back in the balance). Returns what happened.

    Idempotent and order-proof: a transfer that is final never changes again, so a duplicate, a late notification
    or a query racing one changes nothing; the withdrawal's result applies only while it is processing. Locks the
    transfer, then the withdrawal (and wallets). PayoutError if the rail speaks of a transfer we never asked for.
    """
    provider = get_payout_provider(state.rail)
    transfer = transfer_lock(state.number)
    if transfer is None:
        # The rail answered a send we could not record (a crash between the two): its withdrawal has the number.
        withdrawal = Withdrawal.objects.filter(idempotency_key=state.number).first()
        if withdrawal is None:
            raise PayoutError(_("No withdrawal has this transfer number."), code="unknown_transfer")
        try:
            with transaction.atomic():
                Transfer.objects.create(withdrawal=withdrawal, rail=state.rail, number=state.number, state="")
        except IntegrityError:
            pass  # recorded meanwhile by another process
        transfer = transfer_lock(state.number)
    if transfer.state in TRANSFER_FINAL_STATES:
        return f"transfer already {transfer.state}"
    if transfer.fail_reason == EXPIRED and state.state != "SUCCESS":
        state = replace(state, fail_reason=EXPIRED)  # we cancelled it for that: say so, not "cancelled"
    transfer.state = state.state
    transfer.rail_reference = state.rail_reference or transfer.rail_reference
    transfer.package_info = state.package_info or transfer.package_info
    transfer.fail_reason = state.fail_reason or transfer.fail_reason
    transfer.confirm_by = state.confirm_by or transfer.confirm_by
    transfer.updated_at = timezone.now()
    transfer.save(update_fields=["state", "rail_reference", "package_info", "fail_reason", "confirm_by", "updated_at"])
    result = provider.transfer_result(state)
    if result.status == "pending":
        return f"transfer {state.state}"
    counts = _record_results({transfer.withdrawal_id: result}, actor_label=actor_label)
    batch_id, status = Withdrawal.objects.filter(pk=transfer.withdrawal_id).values_list("batch_id", "status").get()
    if batch_id:
        transaction.on_commit(partial(_batch_close_if_done, PayoutBatch(pk=batch_id)))
    if sum(counts.values()):
        return f"withdrawal {result.status}"
    if status != result.status:
        # Finance settled it by hand before the rail's final word, and the two disagree: reconciliation shows it.
        logger.error(
            "withdrawal %s is %s, but %s says its transfer %s is %s",
            transfer.withdrawal_id,
            status,
            state.rail,
            state.number,
            state.state,
        )
    return f"withdrawal already {status}"


@transaction.atomic
def payout_transfer_notification_receive(*, rail: str, body: bytes, headers) -> str:
    """Verify and apply one payout rail notification, exactly once per event id (shops.WebhookEvent, as payment
    notifications). WebhookRejected (nothing changes, the rail sends it again) if it is forged, stale, malformed,
    for a transfer we never made, for another amount or to another payee."""
    if rail not in Transfer.Rail.values:
        raise WebhookRejected(f"unknown payout rail {rail!r:.40}")
    provider = get_payout_provider(rail)
    notice = provider.parse_notification(body, headers)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=rail,
                event_id=notice.event_id,
                event_type=f"transfer.{notice.transfer.state.lower()}",
                payload=notice.payload,
            )
    except IntegrityError:
        return "already processed"
    withdrawal = Withdrawal.objects.filter(idempotency_key=notice.transfer.number).first()
    if withdrawal is None:
        raise WebhookRejected(f"unknown transfer {notice.transfer.number!r:.70}")
    if notice.amount != withdrawal.net_amount:  # the rail was sent the net: the amount less the tax withheld
        raise WebhookRejected(f"amount {notice.amount} does not match withdrawal {withdrawal.net_amount}")
    if notice.payee != provider.payee_of(withdrawal):
        raise WebhookRejected("transfer to another payee")
    outcome = payout_transfer_apply(state=notice.transfer, actor_label=rail)
    event.outcome = outcome
    event.save(update_fields=["outcome"])
    return outcome


def payout_transfer_sync(*, transfer: Transfer, now: datetime | None = None) -> str:
    """Ask the rail how one transfer stands and apply the answer, as its notification would have (one that never
    came is repaired here). A WeChat Pay bill still unconfirmed past its confirm-by time and the grace after it is
    cancelled, so the money returns to the member. The rail is asked outside any transaction; ProviderError if it
    cannot be reached (nothing changes, the next run asks again)."""
    now = now or timezone.now()
    provider = get_payout_provider(transfer.rail)
    state = provider.transfer_query(transfer)
    if state is None:
        # The rail has no transfer under this number: it was never made. Sending again, under the same number, is safe.
        withdrawal = Withdrawal.objects.get(pk=transfer.withdrawal_id)
        counts = _apply_results({withdrawal.pk: provider.send(withdrawal, transfer.number)}, actor_label=provider.name)
        return "sent again" + "".join(f", {status}" for status, count in counts.items() if count)
    grace = timedelta(minutes=settings.PAYOUT_TRANSFER_CANCEL_GRACE_MINUTES)
    if state.state in TRANSFER_WAITING_STATES and transfer.confirm_by and now > transfer.confirm_by + grace:
        state = replace(provider.transfer_cancel(transfer), fail_reason=EXPIRED)
    return payout_transfer_apply(state=state, actor_label=f"{transfer.rail} query")


def payout_transfers_sync(*, now: datetime | None = None, limit: int = 2000) -> dict[str, int]:
    """Periodic: every transfer not yet final whose withdrawal is processing, asked about and applied
    (payout_transfer_sync), longest unchanged first. Returns how many ended how; a rail that cannot be reached is
    counted and asked again next time."""
    counts: Counter = Counter()
    transfers = (
        Transfer.objects.filter(withdrawal__status=Status.PROCESSING)
        .exclude(state__in=TRANSFER_FINAL_STATES)
        .order_by("updated_at", "pk")[:limit]
    )
    for transfer in list(transfers):
        try:
            outcome = payout_transfer_sync(transfer=transfer, now=now)
        except ProviderError as error:
            logger.warning("transfer %s (%s) not synced: %s", transfer.pk, transfer.rail, error)
            outcome = "rail unreachable"
        counts[outcome] += 1
    return dict(counts)


# --- After an account's records have been kept long enough (docs/privacy.md, "Closing an account") -----------------

# A closed account has none in flight (closing waits for them), so every withdrawal left is in one of these.
SETTLED_STATUSES = (Status.PAID, Status.REJECTED, Status.CANCELLED, Status.FAILED)
ERASED_ACCOUNT_KEYS = ("holder_name", "bank_name", "bank_branch", "account_number", "alipay_account", "wechat_id")


def withdrawal_accounts_erase_due(*, batch_size: int = 500) -> int:
    """Mask the payout account saved with each withdrawal of a person whose identity was erased after its retention
    period (`accounts.identity.identities_erase_due`): the name and the numbers become what the pages show (`王*`,
    `**** 7890`), the openid goes; the withdrawal, its amount and its tax stay. Each batch is its own transaction with
    its rows locked; a snapshot masked already (`erased` set) is never read again, so running twice masks nothing
    twice. Returns how many withdrawals were masked."""
    masked = 0
    while True:
        with transaction.atomic():
            due = Withdrawal.objects.filter(
                member__user__identity__erased_at__isnull=False, status__in=SETTLED_STATUSES
            ).exclude(account__has_key="erased")
            rows = withdrawals_lock(due, limit=batch_size)
            if not rows:
                return masked
            for withdrawal in rows:
                account = dict(withdrawal.account or {})
                for key in ERASED_ACCOUNT_KEYS:
                    if account.get(key):
                        account[key] = mask_name(account[key]) if key == "holder_name" else mask(account[key])
                account.pop("wechat_openid", None)
                account["erased"] = True
                withdrawal.account = account
                withdrawal.save(update_fields=["account"])
                masked += 1
