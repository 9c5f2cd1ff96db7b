from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str | None, password: str | None, **extra_fields):
        if not email and not extra_fields.get("phone"):
            raise ValueError("An email address or a phone number is required.")
        user = self.model(email=self.normalize_email(email).lower() or None if email else None, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if extra_fields["is_staff"] is not True or extra_fields["is_superuser"] is not True:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in: by email and password, by phone number (with the password or a code by SMS), or with
    WeChat (allauth's SocialAccount rows). Someone who signed up by phone or WeChat may have no email (None, not "":
    the unique constraint lets any number of NULLs through)."""

    username = None
    email = models.EmailField(_("email address"), unique=True, null=True, blank=True)
    phone = models.CharField(_("phone number"), max_length=20, unique=True, null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.email or self.phone or f"#{self.pk}"

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower() or None if self.email else None
        if self.phone == "":
            self.phone = None


class ApiToken(models.Model):
    """A key a person made for the REST API. Only the key's SHA-256 is stored; `prefix` lets them tell keys apart."""

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=60)
    prefix = models.CharField(_("prefix"), max_length=12)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Identity(models.Model):
    """A person's legal identity (实名), captured once before their first withdrawal (issue #24, docs/privacy.md).

    The legal name and the ID number are stored only encrypted (core.encryption: Fernet keys from IDENTITY_KEYS);
    `id_number_index` is a keyed HMAC of the type and number (IDENTITY_INDEX_KEY) so one ID belongs to one person.
    Read the values through accounts.identity: `identity_masked` for display, `identity_reveal` (a permission and an
    audit row) for the full values. Nothing else decrypts them except the verification and the payee-name check.
    """

    class IdType(models.TextChoices):
        RESIDENT_ID = "resident_id", _("Resident ID card (居民身份证)")
        HK_MACAU_PERMIT = "hk_macau_permit", _("Hong Kong / Macau residents' permit")
        TAIWAN_PERMIT = "taiwan_permit", _("Taiwan residents' permit")
        PASSPORT = "passport", _("Passport")
        FOREIGN_PERMANENT = "foreign_permanent", _("Foreign permanent resident ID")

    class Status(models.TextChoices):
        UNVERIFIED = "unverified", _("Not verified")
        PENDING = "pending", _("Being verified")
        VERIFIED = "verified", _("Verified")
        FAILED = "failed", _("Verification failed")

    class PayeeKind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        BUSINESS = "business", _("Business")

    user = models.OneToOneField(
        "accounts.User", on_delete=models.PROTECT, related_name="identity", verbose_name=_("user")
    )
    id_type = models.CharField(_("ID type"), max_length=20, choices=IdType.choices)
    legal_name_encrypted = models.TextField(_("legal name (encrypted)"), editable=False)
    id_number_encrypted = models.TextField(_("ID number (encrypted)"), editable=False)
    id_number_index = models.CharField(_("ID number blind index"), max_length=64, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.UNVERIFIED)
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    verification_reference = models.CharField(_("verification reference"), max_length=64, blank=True)
    # A business payee (GB 32100 credit code): its name and code are public registry data, so stored in clear.
    payee_kind = models.CharField(_("payee"), max_length=12, choices=PayeeKind.choices, default=PayeeKind.INDIVIDUAL)
    company_name = models.CharField(_("company name"), max_length=100, blank=True)
    credit_code = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    # After the account closed, the identity is kept for the records the law requires (settings.
    # RECORDS_RETENTION_YEARS) and then erased by accounts.identity.identities_erase_due: name and number emptied.
    erase_after = models.DateTimeField(_("erase after"), null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("captured"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        permissions = [("view_full_identity", _("Can see full legal names and ID numbers (audited)"))]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_code"], condition=~models.Q(credit_code=""), name="accounts_identity_credit_code_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"identity of user #{self.user_id} ({self.get_status_display()})"

    @property
    def is_verified(self) -> bool:
        return self.status == self.Status.VERIFIED


class IdentityEvent(models.Model):
    """Every change to an identity and every full read of it, in the same transaction (the audit log reads these).
    `detail` holds masked values only, never the name or number in full."""

    class Kind(models.TextChoices):
        CAPTURED = "captured", _("captured by the member")
        CHECKED = "checked", _("verification answered")
        STATUS = "status", _("status set by staff")
        CHANGED = "changed", _("changed by staff")
        REVEALED = "revealed", _("full values read")
        BUSINESS = "business", _("business payee registered")
        RETAINED = "retained", _("kept after the account closed")
        ERASED = "erased", _("erased after the retention period")

    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    actor = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=40, blank=True)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("identity event")
        verbose_name_plural = _("identity events")
        ordering = ("created_at", "pk")
        indexes = [models.Index(fields=["created_at"], name="accounts_identityevent_time")]

    def __str__(self) -> str:
        return f"{self.identity_id}: {self.kind}"


class ApprovalRequest(models.Model):
    """One staff member's request that a second one approve a change to money or rules (four eyes, docs/compliance.md).

    Written by `accounts.approvals.approval_request`, decided by `approval_decide`: the change itself is done by its
    own app's service (registered for `action`) when a second staff member, never the one who asked, approves it.
    The row is the audit: who asked and why, who decided, when, and what came of it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a second approval")
        APPROVED = "approved", _("Approved and done")
        REFUSED = "refused", _("Refused")
        CANCELLED = "cancelled", _("Withdrawn by the requester")
        FAILED = "failed", _("Approved, but the change was refused")

    action = models.CharField(_("action"), max_length=60)
    target_type = models.CharField(_("object type"), max_length=60)  # "payouts.withdrawal"
    target_id = models.CharField(_("object id"), max_length=40)
    target_label = models.CharField(_("object"), max_length=200)
    summary = models.CharField(_("what would change"), max_length=300)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2, null=True, blank=True)
    reason = models.TextField(_("reason"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    decided_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("decided by"),
    )  # fmt: skip
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    outcome = models.TextField(_("outcome"), blank=True)

    class Meta:
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        ordering = ("-requested_at", "-pk")
        constraints = [
            # Four eyes in the database too: whoever asked never decides (a withdrawal of one's own request is
            # `cancelled`, with no decider).
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True) | ~models.Q(decided_by=models.F("requested_by")),
                name="accounts_approval_two_people",
            ),
            # One open request per change of one object: asking twice finds the first.
            models.UniqueConstraint(
                fields=["action", "target_type", "target_id"],
                condition=models.Q(status="pending"),
                name="accounts_approval_one_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "requested_at"], name="accounts_approval_queue"),
            models.Index(fields=["requested_at"], name="accounts_approval_time"),
        ]

    def __str__(self) -> str:
        return self.summary
