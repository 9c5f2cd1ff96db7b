"""WeChat's web OAuth (网页授权) for an official account: who is the WeChat user in this browser, as an openid.

Two steps, as WeChat documents them:

1. The browser (WeChat's in-app browser) is sent to `authorize_url(redirect_uri, state)`:
   open.weixin.qq.com/connect/oauth2/authorize?appid=…&redirect_uri=…&response_type=code&scope=…&state=…
   #wechat_redirect. With scope snsapi_base WeChat asks the user nothing and sends the browser straight back to
   `redirect_uri?code=…&state=…`. `redirect_uri`'s host must be the account's 网页授权域名; `state` (up to 128
   letters and digits) comes back unchanged, and the caller checks it against what it kept in the session (no
   one else's code is accepted: CSRF).
2. The server exchanges the code (single use, valid 5 minutes) for the openid: `openid_for_code(code)` asks
   api.weixin.qq.com/sns/oauth2/access_token?appid=…&secret=…&code=…&grant_type=authorization_code.

The openid is the user's id for this official account only: WeChat Pay JSAPI needs it (`payer.openid`, with the same
AppID as WECHATPAY_APPID), and so do transfers to a member's WeChat. Callers keep it in the session, not the
database; logs show it masked (base.mask).

Settings: WECHAT_OAUTH_APPID (default WECHATPAY_APPID), WECHAT_OAUTH_SECRET (the account's AppSecret, or
WECHAT_OAUTH_SECRET_FILE), WECHAT_OAUTH_URL (https://open.weixin.qq.com) and WECHAT_API_URL
(https://api.weixin.qq.com): the local fake's address in tests.
"""

import hmac
import re
import secrets
import time
from urllib.parse import urlencode

import requests
from django.conf import settings

AUTHORIZE_PATH = "/connect/oauth2/authorize"
ACCESS_TOKEN_PATH = "/sns/oauth2/access_token"  # noqa: S105 - a URL path, not a secret
SCOPES = ("snsapi_base", "snsapi_userinfo")
STATE_SHAPE = re.compile(r"[A-Za-z0-9]{1,128}")
CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
OPENID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class WeChatOAuthError(Exception):
    """WeChat refused the exchange (a used, expired or unknown code; a wrong AppID or AppSecret) or could not be
    reached. The message names the reason and never the secret, the code or the openid."""


def missing_settings() -> list[str]:
    """The settings still needed before WeChat OAuth can run (empty when it can)."""
    return [name for name in ("WECHAT_OAUTH_APPID", "WECHAT_OAUTH_SECRET") if not getattr(settings, name)]


def is_configured() -> bool:
    return not missing_settings()


def new_state() -> str:
    """A fresh `state` for one authorization (32 letters and digits, as WeChat allows)."""
    return secrets.token_hex(16)


def state_begin(session, key: str, **kept) -> str:
    """A fresh state kept in the session under `key`, with `kept` (JSON-able) to pick up when WeChat sends the
    browser back; one authorization on its way per key, a new one replacing the one before."""
    state = new_state()
    session[key] = {**kept, "state": state, "at": int(time.time())}
    return state


def state_finish(session, key: str, state: str, *, max_age: int) -> dict | None:
    """What `state_begin` kept under `key`, if `state` is the one this session sent, within `max_age` seconds;
    None otherwise. It is used up either way, so a state works once and another browser's code is never exchanged
    in this session (CSRF)."""
    pending = session.pop(key, None)
    if not isinstance(pending, dict) or not isinstance(pending.get("state"), str):
        return None
    if not hmac.compare_digest(pending["state"].encode(), (state or "").encode()):
        return None
    if time.time() - pending.get("at", 0) > max_age:
        return None
    return pending


def authorize_url(redirect_uri: str, state: str, *, scope: str = "snsapi_base") -> str:
    """Where to send the browser to learn its WeChat user's openid; WeChat sends it back to `redirect_uri` with
    `code` and `state`. ValueError for a state WeChat would not carry back unchanged, or an unknown scope."""
    if not STATE_SHAPE.fullmatch(state):
        raise ValueError("state must be 1 to 128 letters and digits")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    # In this order: WeChat's page refuses the parameters in another (its documentation insists on it).
    query = urlencode(
        [
            ("appid", settings.WECHAT_OAUTH_APPID),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ]
    )
    return f"{settings.WECHAT_OAUTH_URL.rstrip('/')}{AUTHORIZE_PATH}?{query}#wechat_redirect"


def openid_for_code(code: str) -> str:
    """The openid of the WeChat user a `code` (from the redirect back) was given for. WeChatOAuthError if WeChat
    refuses it (each code works once, for 5 minutes) or cannot be reached."""
    if not CODE_SHAPE.fullmatch(code or ""):
        raise WeChatOAuthError("malformed code")
    if not is_configured():
        raise WeChatOAuthError(f"not configured: {', '.join(missing_settings())}")
    params = {
        "appid": settings.WECHAT_OAUTH_APPID,
        "secret": settings.WECHAT_OAUTH_SECRET,
        "code": code,
        "grant_type": "authorization_code",
    }
    url = settings.WECHAT_API_URL.rstrip("/") + ACCESS_TOKEN_PATH
    try:
        response = requests.get(url, params=params, timeout=settings.PAYMENTS_PROVIDER_TIMEOUT)
    except requests.RequestException as error:
        raise WeChatOAuthError(f"cannot be reached ({type(error).__name__})") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        raise WeChatOAuthError(f"malformed answer (HTTP {response.status_code})")
    if answer.get("errcode"):
        # 40029 invalid code (unknown or expired), 40163 code been used, 40013 invalid appid, 40125 invalid secret.
        raise WeChatOAuthError(f"refused ({answer.get('errcode')}): {str(answer.get('errmsg', ''))[:100]}")
    openid = answer.get("openid")
    if not isinstance(openid, str) or not OPENID_SHAPE.fullmatch(openid):
        raise WeChatOAuthError("answered without an openid")
    return openid
