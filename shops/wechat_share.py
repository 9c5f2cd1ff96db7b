"""WeChat JS-SDK share configuration for the shop and product pages, when WECHAT_JSSDK_TICKET_PROVIDER is set.

Inside WeChat's browser a page may set the card a share shows (title, text, picture) through the JS-SDK, after
`wx.config({appId, timestamp, nonceStr, signature, jsApiList})`. WeChat documents the signature (JS-SDK 说明文档,
附录1 "JS-SDK使用权限签名算法"): the fields jsapi_ticket, noncestr, timestamp and url (the page's full URL without the
#fragment) sorted by name, joined as `key=value` with `&`, hashed with SHA-1, lower-case hex. `jsapi_signature` is
that and nothing else; a test checks it against WeChat's own worked example.

The jsapi_ticket comes from WeChat's API in two steps, each answer valid 7200 s and rate-limited, so both are
cached (Django's cache, a shared one in production so every process uses the same ticket):
1. GET {WECHAT_API_URL}/cgi-bin/token?grant_type=client_credential&appid=…&secret=… → access_token
2. GET {WECHAT_API_URL}/cgi-bin/ticket/getticket?access_token=…&type=jsapi → ticket
The official account's access_token is one per account: if another system of the same account fetches tokens too,
each fetch invalidates the other's; then give this site a ticket provider of its own (a dotted path) that reads
the ticket from that system.

WECHAT_JSSDK_TICKET_PROVIDER: "" (off: no wx.config on the pages; the Open Graph tags stay), "wechat"
(`WeChatTicketProvider`), or the dotted path of a class with `ticket() -> str` (tests use a fake). A page whose
ticket cannot be had is rendered without the config (logged), never an error.
"""

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 - a URL path, not a secret
TICKET_PATH = "/cgi-bin/ticket/getticket"
CACHE_KEY_TOKEN = "wechat-jssdk:access-token"  # noqa: S105 - a cache key, not a secret
CACHE_KEY_TICKET = "wechat-jssdk:ticket"
EARLY_SECONDS = 300  # renew this long before WeChat's expiry, so a page never signs with a ticket about to lapse
TIMEOUT_SECONDS = 5
SHARE_APIS = ("updateAppMessageShareData", "updateTimelineShareData")


class TicketError(Exception):
    """WeChat refused (wrong AppID or secret, a server IP not on the account's whitelist) or could not be reached."""


def jsapi_signature(*, ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """WeChat's JS-SDK signature of `url` (its #fragment dropped, as WeChat requires)."""
    page = url.split("#", 1)[0]
    fields = {"jsapi_ticket": ticket, "noncestr": nonce, "timestamp": str(timestamp), "url": page}
    text = "&".join(f"{key}={fields[key]}" for key in sorted(fields))
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - WeChat's algorithm, not our choice


class WeChatTicketProvider:
    """The jsapi_ticket from WeChat's API with WECHAT_JSSDK_APPID and WECHAT_JSSDK_SECRET, both steps cached."""

    def __init__(self, *, session: requests.Session | None = None):
        self.session = session or requests.Session()

    def _get(self, path: str, params: dict) -> dict:
        try:
            response = self.session.get(settings.WECHAT_API_URL + path, params=params, timeout=TIMEOUT_SECONDS)
            body = response.json()
        except (requests.RequestException, ValueError) as error:
            raise TicketError(f"WeChat {path} could not be reached: {type(error).__name__}") from None
        if body.get("errcode"):
            raise TicketError(f"WeChat {path} refused: {body.get('errcode')} {body.get('errmsg', '')}".strip())
        return body

    def _cached(self, key: str, field: str, path: str, params: dict) -> str:
        value = cache.get(key)
        if value:
            return value
        body = self._get(path, params)
        value = body.get(field)
        if not isinstance(value, str) or not value:
            raise TicketError(f"WeChat {path} answered without {field}")
        lifetime = int(body.get("expires_in") or 7200)
        cache.set(key, value, max(60, lifetime - EARLY_SECONDS))
        return value

    def ticket(self) -> str:
        if not (settings.WECHAT_JSSDK_APPID and settings.WECHAT_JSSDK_SECRET):
            raise TicketError("WECHAT_JSSDK_APPID and WECHAT_JSSDK_SECRET are needed")
        token = self._cached(
            CACHE_KEY_TOKEN,
            "access_token",
            TOKEN_PATH,
            {"grant_type": "client_credential", "appid": settings.WECHAT_JSSDK_APPID,
             "secret": settings.WECHAT_JSSDK_SECRET},
        )  # fmt: skip
        return self._cached(CACHE_KEY_TICKET, "ticket", TICKET_PATH, {"access_token": token, "type": "jsapi"})


def in_wechat(request) -> bool:
    """Whether the page is opened in WeChat's own browser (the only place the JS-SDK runs)."""
    return "micromessenger" in request.headers.get("User-Agent", "").lower()


def ticket_provider():
    """The configured provider, or None when the share config is off."""
    name = settings.WECHAT_JSSDK_TICKET_PROVIDER
    if not name:
        return None
    if name == "wechat":
        return WeChatTicketProvider()
    return import_string(name)()


@dataclass(frozen=True)
class ShareConfig:
    """What the page's script passes to wx.config, and the card it sets once WeChat is ready."""

    app_id: str
    timestamp: int
    nonce: str
    signature: str
    title: str
    description: str
    link: str
    image: str

    def as_json(self) -> dict:
        return {
            "config": {
                "appId": self.app_id,
                "timestamp": self.timestamp,
                "nonceStr": self.nonce,
                "signature": self.signature,
                "jsApiList": list(SHARE_APIS),
            },
            "share": {"title": self.title, "desc": self.description, "link": self.link, "imgUrl": self.image},
        }


def share_config(*, page_url: str, title: str, description: str, image: str) -> ShareConfig | None:
    """The signed share config of `page_url` (an absolute URL, as the browser shows it), or None when it is off or
    the ticket cannot be had (the page then shows without it)."""
    provider = ticket_provider()
    if provider is None:
        return None
    try:
        ticket = provider.ticket()
    except TicketError as error:
        logger.warning("wechat share config left out: %s", error)
        return None
    timestamp, nonce = int(time.time()), secrets.token_hex(8)
    return ShareConfig(
        app_id=settings.WECHAT_JSSDK_APPID,
        timestamp=timestamp,
        nonce=nonce,
        signature=jsapi_signature(ticket=ticket, nonce=nonce, timestamp=timestamp, url=page_url),
        title=title,
        description=description,
        link=page_url.split("#", 1)[0],
        image=image,
    )
