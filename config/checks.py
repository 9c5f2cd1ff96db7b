"""Deployment checks: development secrets and sandbox services never reach production unnoticed.

`manage.py check --deploy` reports each as an error (it exits non-zero), and with DEBUG=0 gunicorn (config.wsgi,
config.asgi), the Celery worker and beat (config.celery) refuse to start while any is found:

- cps.E001: PAYMENTS_SANDBOX_SECRET is the public development default. Anyone could sign a sandbox webhook and
  mark an order paid; setting a random one costs one variable, so no setting waives this.
- cps.E002 / cps.E003: the sandbox payment provider (buyers "pay" with a button) or payout provider (withdrawals
  are "paid" without money moving) is the one in use;
- cps.E004: the sandbox affiliate network is configured (its control endpoints make up orders that pay commission).

ALLOW_SANDBOX_PROVIDERS=1 waives E002 to E004, for a staging deployment where no real money moves.

- cps.E005: a real payment rail (wechatpay, alipay) is enabled (PAYMENT_PROVIDER, or listed in PAYMENT_RAILS) and
  its credentials are missing: buyers could not pay, or notifications could not be verified. Never waived.
- cps.E006: an enabled rail's gateway URL is not https (the local fakes), nor WeChat's OAuth URLs when it is
  configured with WeChat Pay: waived by ALLOW_SANDBOX_PROVIDERS=1.

Payout rails (wechat_transfer, alipay_transfer) are rails too: enabled when PAYOUT_PROVIDER or listed in
PAYOUT_RAILS, they get the same E005 (members could not be paid, transfer notifications not verified) and E006;
and cps.E007 refuses a PAYOUT_RAILS entry that names no payout rail (a typo would send every withdrawal to finance
by hand without a word).
"""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from networks.connectors import connector_configured
from payouts.providers import alipay_transfer as alipay_transfer_rail
from payouts.providers import wechat_transfer as wechat_transfer_rail
from shops.payments import alipay as alipay_rail
from shops.payments import wechat_oauth
from shops.payments import wechatpay as wechatpay_rail

STAGING_HINT = "Only on a staging deployment where no real money moves: set ALLOW_SANDBOX_PROVIDERS=1."


def sandbox_refusals() -> list[Error]:
    """The development secrets and sandbox services in the settings, each as a system-check error."""
    errors = []
    if settings.PAYMENTS_SANDBOX_SECRET == settings.DEV_PAYMENTS_SANDBOX_SECRET:
        errors.append(
            Error(
                "PAYMENTS_SANDBOX_SECRET is the public development default: anyone can sign a sandbox payment "
                "webhook with it.",
                hint="Set PAYMENTS_SANDBOX_SECRET to a long random string.",
                id="cps.E001",
            )
        )
    if settings.DEV_IDENTITY_KEY in settings.IDENTITY_KEYS or (
        settings.IDENTITY_INDEX_KEY == settings.DEV_IDENTITY_INDEX_KEY
    ):
        errors.append(
            Error(
                "IDENTITY_KEYS or IDENTITY_INDEX_KEY holds the public development key: anyone could read members' "
                "legal names and ID numbers from a copy of the database.",
                hint="Set IDENTITY_KEYS (a Fernet key) and IDENTITY_INDEX_KEY (a long random string): docs/privacy.md.",
                id="cps.E008",
            )
        )
    if settings.ALLOW_SANDBOX_PROVIDERS:
        return errors
    if settings.PAYMENT_PROVIDER == "sandbox":
        errors.append(
            Error(
                "PAYMENT_PROVIDER is 'sandbox': buyers would pay with a button, and no money arrives.",
                hint=f"Set PAYMENT_PROVIDER to a real provider listed in PAYMENT_PROVIDERS. {STAGING_HINT}",
                id="cps.E002",
            )
        )
    if settings.PAYOUT_PROVIDER == "sandbox":
        errors.append(
            Error(
                "PAYOUT_PROVIDER is 'sandbox': withdrawals would be marked paid and no money sent.",
                hint=f"Set PAYOUT_PROVIDER=manual (a bank batch file) or another real provider. {STAGING_HINT}",
                id="cps.E003",
            )
        )
    if connector_configured("sandbox"):
        errors.append(
            Error(
                "The sandbox affiliate network is configured (NETWORK_SANDBOX_*): its orders are made up by anyone "
                "who reaches its control endpoints, and they pay commission.",
                hint=(
                    "Unset NETWORK_SANDBOX_URL, NETWORK_SANDBOX_APP_KEY and NETWORK_SANDBOX_APP_SECRET. " + STAGING_HINT
                ),
                id="cps.E004",
            )
        )
    return errors


RAILS = {
    "wechatpay": (wechatpay_rail.missing_settings, "WECHATPAY_GATEWAY_URL"),
    "alipay": (alipay_rail.missing_settings, "ALIPAY_GATEWAY_URL"),
}
PAYOUT_RAILS = {
    "wechat_transfer": (wechat_transfer_rail.missing_settings, "WECHATPAY_GATEWAY_URL"),
    "alipay_transfer": (alipay_transfer_rail.missing_settings, "ALIPAY_GATEWAY_URL"),
}


def enabled_rails() -> list[str]:
    wanted = [settings.PAYMENT_PROVIDER, *settings.PAYMENT_RAILS]
    payouts_wanted = [settings.PAYOUT_PROVIDER, *settings.PAYOUT_RAILS]
    return [name for name in RAILS if name in wanted] + [name for name in PAYOUT_RAILS if name in payouts_wanted]


def payment_rail_refusals() -> list[Error]:
    """Each enabled real rail whose credentials are missing, or whose gateway is not https, as an error."""
    errors = []
    for name in settings.PAYOUT_RAILS:
        if name not in PAYOUT_RAILS:
            errors.append(
                Error(
                    f"PAYOUT_RAILS names {name!r}, which is no payout rail.",
                    hint=f"List only {', '.join(PAYOUT_RAILS)} (docs/payments.md).",
                    id="cps.E007",
                )
            )
    for name in enabled_rails():
        missing_settings, gateway_setting = {**RAILS, **PAYOUT_RAILS}[name]
        missing = missing_settings()
        kind = "payment" if name in RAILS else "payout"
        if missing:
            errors.append(
                Error(
                    f"The {name} {kind} rail is enabled but not configured: {', '.join(missing)}.",
                    hint="Set them in the environment, keys as files named by <NAME>_FILE (docs/payments.md).",
                    id="cps.E005",
                )
            )
        if not settings.ALLOW_SANDBOX_PROVIDERS and not getattr(settings, gateway_setting).startswith("https://"):
            errors.append(
                Error(
                    f"{gateway_setting} is not an https address: a local fake, not {name}.",
                    hint=f"Unset {gateway_setting} (the default is the real gateway). {STAGING_HINT}",
                    id="cps.E006",
                )
            )
    return errors + wechat_oauth_refusals()


def wechat_oauth_refusals() -> list[Error]:
    """WeChat's OAuth (JSAPI's openid) configured with a rail that uses it, but pointed at a non-https address (the
    local fake): cps.E006 too, waived the same way."""
    if "wechatpay" not in enabled_rails() or not wechat_oauth.is_configured() or settings.ALLOW_SANDBOX_PROVIDERS:
        return []
    return [
        Error(
            f"{name} is not an https address: a local fake, not WeChat.",
            hint=f"Unset {name} (the default is WeChat's). {STAGING_HINT}",
            id="cps.E006",
        )
        for name in ("WECHAT_OAUTH_URL", "WECHAT_API_URL")
        if not getattr(settings, name).startswith("https://")
    ]


@register(Tags.security, deploy=True)
def check_sandbox_settings(app_configs=None, **kwargs) -> list[Error]:
    return sandbox_refusals()


@register(Tags.security, deploy=True)
def check_payment_rails(app_configs=None, **kwargs) -> list[Error]:
    return payment_rail_refusals()


def refuse_to_start_with_sandbox_settings() -> None:
    """In production (DEBUG=0), raise ImproperlyConfigured naming every refusal of `sandbox_refusals` (process
    start-up)."""
    if not settings.IS_PRODUCTION:
        return
    errors = sandbox_refusals() + payment_rail_refusals()
    if errors:
        raise ImproperlyConfigured(
            "Refusing to start with development settings in production (DEBUG=0):\n"
            + "\n".join(f"{error.id}: {error.msg} {error.hint}" for error in errors)
        )
