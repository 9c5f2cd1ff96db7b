"""A local fake of WeChat's web OAuth (网页授权) for one official account, faithful to the wire protocol so
shops/payments/wechat_oauth.py runs against it unchanged (only WECHAT_OAUTH_URL and WECHAT_API_URL point here).

- GET /connect/oauth2/authorize?appid=…&redirect_uri=…&response_type=code&scope=snsapi_base|snsapi_userinfo
  &state=… : the page WeChat's in-app browser opens. Outside WeChat (no MicroMessenger in the User-Agent) it only
  says to open the link in WeChat, as WeChat's does; a redirect_uri whose host is not an authorized domain
  (`domains`, when set) gets error 10003. Otherwise the browser is sent straight back to
  `redirect_uri?code=…&state=…` (snsapi_base asks the user nothing; the fake does the same for snsapi_userinfo).
- GET /sns/oauth2/access_token?appid=…&secret=…&code=…&grant_type=authorization_code : the server-side exchange.
  Answers are JSON with HTTP 200, errors as {"errcode": …, "errmsg": …}: 40002 invalid grant_type, 40013 invalid
  appid, 40125 invalid appsecret, 40029 invalid code (unknown, or given to another account), 40163 code been used
  (each code works once), 42003 code timeout (5 minutes).

The WeChat user in the browser is `user` (a name the test chooses); their openid for this account is
`openid_for(user)`, stable for a user and account, different across accounts, as WeChat's are.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from shops.payments.fakes.common import Request, Response, html_response, redirect_response

AUTHORIZE_PATH = "/connect/oauth2/authorize"
ACCESS_TOKEN_PATH = "/sns/oauth2/access_token"  # noqa: S105 - a URL path, not a secret
CODE_LIFETIME = 300  # seconds, as WeChat documents
SCOPES = ("snsapi_base", "snsapi_userinfo")


@dataclass
class Code:
    value: str
    appid: str
    openid: str
    scope: str
    issued_at: float
    used: bool = False


class WeChatOAuthFake:
    """One official account's web OAuth, in memory. `secret` is its AppSecret (fresh for each instance)."""

    def __init__(self, *, appid: str, secret: str | None = None):
        self.appid = appid
        self.secret = secret or secrets.token_hex(16)  # 32 hex characters, as an AppSecret is
        self.user = "wechat-buyer"  # who is logged in to WeChat in the browser that opens the authorize page
        self.domains: set[str] | None = None  # the account's authorized domains (网页授权域名); None: any
        self.clock = time.time  # tests move it to let codes expire
        self.codes: dict[str, Code] = {}
        self.refused: list[tuple[str, int]] = []  # (path, errcode) of every refused request
        self._lock = threading.Lock()

    def openid_for(self, user: str | None = None) -> str:
        """The openid of `user` (default: the browser's user) for this account: 28 characters starting with "o"."""
        digest = hashlib.sha256(f"{self.appid}:{user or self.user}".encode()).digest()
        return "o" + base64.urlsafe_b64encode(digest).decode()[:27]

    def handle(self, request: Request) -> Response | None:
        if request.method == "GET" and request.path == AUTHORIZE_PATH:
            return self._authorize(request)
        if request.method == "GET" and request.path == ACCESS_TOKEN_PATH:
            return self._access_token(dict(parse_qsl(request.query, keep_blank_values=True)))
        return None

    # --- the browser's side ----------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if "MicroMessenger" not in request.headers.get("user-agent", ""):
            return html_response(200, _page("请在微信客户端打开链接 (open this link in WeChat)"))
        redirect_uri, scope = params.get("redirect_uri", ""), params.get("scope", "")
        if not params.get("appid"):
            return self._error_page(10012, "appid 不能为空")
        if params["appid"] != self.appid:
            return self._error_page(40013, "invalid appid")
        if not redirect_uri:
            return self._error_page(10011, "redirect_uri 不能为空")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.hostname:
            return self._error_page(10011, "redirect_uri 参数错误")
        if self.domains is not None and target.hostname not in self.domains:
            return self._error_page(10003, "redirect_uri 域名与后台配置不一致")
        if params.get("response_type") != "code":
            return self._error_page(10010, "response_type 参数错误")
        if not scope:
            return self._error_page(10010, "scope 不能为空")
        if scope not in SCOPES:
            return self._error_page(10005, "此公众号并没有这些 scope 的权限")
        code = Code(
            value=secrets.token_hex(16),
            appid=self.appid,
            openid=self.openid_for(),
            scope=scope,
            issued_at=self.clock(),
        )
        with self._lock:
            self.codes[code.value] = code
        back = urlencode({"code": code.value, "state": params.get("state", "")})
        return redirect_response(redirect_uri + ("&" if "?" in redirect_uri else "?") + back)

    def _error_page(self, errcode: int, message: str) -> Response:
        with self._lock:
            self.refused.append((AUTHORIZE_PATH, errcode))
        return html_response(200, _page(f"Oops! Something went wrong:( 错误码 {errcode}: {escape(message)}"))

    # --- the server's side -----------------------------------------------------------------------------------

    def _access_token(self, params: dict[str, str]) -> Response:
        with self._lock:
            if params.get("grant_type") != "authorization_code":
                return self._refuse(40002, "invalid grant_type")
            if params.get("appid") != self.appid:
                return self._refuse(40013, "invalid appid")
            if params.get("secret") != self.secret:
                return self._refuse(40125, "invalid appsecret")
            code = self.codes.get(params.get("code", ""))
            if code is None or code.appid != self.appid:
                return self._refuse(40029, "invalid code")
            if code.used:
                return self._refuse(40163, "code been used")
            if self.clock() - code.issued_at > CODE_LIFETIME:
                return self._refuse(42003, "code expired")
            code.used = True
        return _json(
            {
                "access_token": secrets.token_urlsafe(64),
                "expires_in": 7200,
                "refresh_token": secrets.token_urlsafe(64),
                "openid": code.openid,
                "scope": code.scope,
            }
        )

    def _refuse(self, errcode: int, errmsg: str) -> Response:
        self.refused.append((ACCESS_TOKEN_PATH, errcode))
        return _json({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(12)}"})


def _json(body: dict) -> Response:
    return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json; encoding=utf-8"})


def _page(text: str) -> str:
    return f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>微信 (fake)</title><p>{text}</p></html>'
