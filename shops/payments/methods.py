"""Which payment methods fit the buyer's browser, among the rails this deployment has configured.

- WeChat's in-app browser (its User-Agent says MicroMessenger): WeChat Pay JSAPI, paid inside WeChat with the
  buyer's openid (WeChat's silent OAuth, shops/payments/wechat_oauth.py). WeChat blocks Alipay's pages, so Alipay
  is not offered there.
- Alipay's in-app browser (AlipayClient): Alipay wap.
- A phone's browser: WeChat Pay H5 (the page opens WeChat) and Alipay wap (the page opens Alipay).
- A desktop browser: WeChat Pay Native (a QR code the buyer scans with WeChat) and Alipay page (Alipay's cashier,
  where the buyer logs in or scans).

The sandbox's hosted page works in any browser. A rail is offered when it is PAYMENT_PROVIDER or listed in
PAYMENT_RAILS, and its settings are complete; JSAPI needs the WeChat OAuth settings too. Pure functions of their
arguments and the settings: no request, no database.
"""

import re
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from shops.payments import alipay, wechat_oauth, wechatpay

Browser = Literal["wechat", "alipay", "phone", "desktop"]

# The methods each kind of browser can pay with, per provider, in the order they are offered.
METHODS_BY_BROWSER: dict[Browser, dict[str, tuple[str, ...]]] = {
    "wechat": {"wechatpay": ("jsapi",), "alipay": (), "sandbox": ("hosted",)},
    "alipay": {"wechatpay": (), "alipay": ("wap",), "sandbox": ("hosted",)},
    "phone": {"wechatpay": ("h5",), "alipay": ("wap",), "sandbox": ("hosted",)},
    "desktop": {"wechatpay": ("native",), "alipay": ("page",), "sandbox": ("hosted",)},
}
# Phones and tablets: Android, iOS, HarmonyOS and the rest say "Mobile" or name the device. An iPad asking for the
# desktop site says "Macintosh" and is taken for a desktop: it then gets the QR code and Alipay's desktop cashier,
# both of which work on it.
PHONE = re.compile(r"Mobile|Android|iPhone|iPad|iPod|HarmonyOS|OpenHarmony|Windows Phone|BlackBerry|Opera Mini")
LABELS = {
    "wechatpay": _("WeChat Pay"),
    "alipay": _("Alipay"),
    "sandbox": _("Sandbox (test payment, no money moves)"),
}
HINTS = {
    ("wechatpay", "native"): _("Scan a QR code with WeChat."),
    ("wechatpay", "h5"): _("WeChat opens to confirm the payment."),
    ("wechatpay", "jsapi"): _("Pay here in WeChat."),
    ("alipay", "page"): _("Pay on Alipay's checkout page."),
    ("alipay", "wap"): _("Alipay opens to confirm the payment."),
    ("sandbox", "hosted"): _("A test page with pay and decline buttons."),
}
RAIL_MISSING_SETTINGS = {"wechatpay": wechatpay.missing_settings, "alipay": alipay.missing_settings}


@dataclass(frozen=True)
class PaymentMethod:
    provider: str  # a key of settings.PAYMENT_PROVIDERS
    method: str  # one of the provider's `methods`

    @property
    def key(self) -> str:
        """How a form names it: "wechatpay:native"."""
        return f"{self.provider}:{self.method}"

    @property
    def label(self) -> str:
        return str(LABELS.get(self.provider, self.provider))

    @property
    def hint(self) -> str:
        return str(HINTS.get((self.provider, self.method), ""))


def browser_kind(user_agent: str) -> Browser:
    """What kind of browser a User-Agent header names (anything unknown is a desktop)."""
    user_agent = user_agent or ""
    if "MicroMessenger" in user_agent:
        return "wechat"
    if "AlipayClient" in user_agent:
        return "alipay"
    if PHONE.search(user_agent):
        return "phone"
    return "desktop"


def offered_providers() -> list[str]:
    """The providers buyers may pay with: PAYMENT_PROVIDER first, then PAYMENT_RAILS, each once, each known in
    PAYMENT_PROVIDERS and (a real rail) with its settings complete."""
    offered = []
    for name in [settings.PAYMENT_PROVIDER, *settings.PAYMENT_RAILS]:
        if name in offered or name not in settings.PAYMENT_PROVIDERS:
            continue
        missing_settings = RAIL_MISSING_SETTINGS.get(name)
        if missing_settings is not None and missing_settings():
            continue
        offered.append(name)
    return offered


def methods_for_browser(browser: Browser, providers: list[str], *, has_wechat_oauth: bool) -> list[PaymentMethod]:
    """The methods of `providers` (in their order) that work in `browser`. JSAPI only with WeChat OAuth configured
    (it needs the buyer's openid)."""
    methods = []
    for provider in providers:
        for method in METHODS_BY_BROWSER[browser].get(provider, ()):
            if (provider, method) == ("wechatpay", "jsapi") and not has_wechat_oauth:
                continue
            methods.append(PaymentMethod(provider, method))
    return methods


def payment_methods(user_agent: str) -> list[PaymentMethod]:
    """The methods to offer a buyer whose browser sends `user_agent`, from the configured rails."""
    return methods_for_browser(
        browser_kind(user_agent), offered_providers(), has_wechat_oauth=wechat_oauth.is_configured()
    )
