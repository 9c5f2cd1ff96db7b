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

- GET /connect/qrconnect?appid=…&redirect_uri=…&response_type=code&scope=snsapi_login&state=… : the website app's
  QR login on a desktop browser (开放平台网站应用, for logging in with WeChat: accounts.wechat_login). WeChat shows a
  QR code there and sends the browser back once the person scans and confirms on their phone; the fake takes the QR
  as scanned at once by `user` and sends the browser back to `redirect_uri?code=…&state=…`. Only a website app
  (`add_app(kind="web")`) may use it, and only with snsapi_login.
- GET /sns/userinfo?access_token=…&openid=…&lang=… : who the person is, for snsapi_userinfo and snsapi_login
  tokens: {"openid", "nickname", "sex", "province", "city", "country", "headimgurl", "privilege", "unionid"} (the
  unionid only for apps bound to the Open Platform account, `open_platform`); 40001 for an unknown or expired
  access_token, 40003 for an openid that is not the token's, 48001 for a snsapi_base token (no permission).
  The JSON is sent as WeChat sends it: UTF-8, Content-Type "application/json; encoding=utf-8" (no charset).

The WeChat user in the browser is `user` (a name the test chooses); their openid for an app is
`openid_for(user, appid)`, stable for a user and app, different across apps, as WeChat's are; their unionid
(`unionid_for(user)`) is the same in every app of the Open Platform account.
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
QRCONNECT_PATH = "/connect/qrconnect"
ACCESS_TOKEN_PATH = "/sns/oauth2/access_token"  # noqa: S105 - a URL path, not a secret
USERINFO_PATH = "/sns/userinfo"
CODE_LIFETIME = 300  # seconds, as WeChat documents
ACCESS_TOKEN_LIFETIME = 7200
SCOPES = ("snsapi_base", "snsapi_userinfo")


@dataclass
class AccessToken:
    value: str
    appid: str
    openid: str
    user: str
    scope: str
    issued_at: float


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
        self.users_of_codes: dict[str, str] = {}  # code -> the user it was given to
        self.refused: list[tuple[str, int]] = []  # (path, errcode) of every refused request
        self._lock = threading.Lock()
        # Other apps of the same Open Platform account (appid -> (secret, "mp" or "web")); this one is an official
        # account ("mp"). With `open_platform`, every app's answers carry the person's unionid.
        self.apps: dict[str, tuple[str, str]] = {appid: (self.secret, "mp")}
        self.open_platform = False
        self.nicknames: dict[str, str] = {}  # user -> nickname (default: the user's name)
        self.tokens: dict[str, AccessToken] = {}

    def add_app(self, *, appid: str, kind: str = "web", secret: str | None = None) -> str:
        """Another app of the Open Platform account: a website app ("web", QR login) or an official account ("mp").
        Returns its AppSecret."""
        if kind not in ("web", "mp"):
            raise ValueError(f"unknown kind of app {kind!r}")
        secret = secret or secrets.token_hex(16)
        self.apps[appid] = (secret, kind)
        return secret

    def openid_for(self, user: str | None = None, appid: str | None = None) -> str:
        """The openid of `user` (default: the browser's user) for an app (default: this official account): 28
        characters starting with "o"."""
        digest = hashlib.sha256(f"{appid or self.appid}:{user or self.user}".encode()).digest()
        return "o" + base64.urlsafe_b64encode(digest).decode()[:27]

    def unionid_for(self, user: str | None = None) -> str:
        """The unionid of `user` across the Open Platform account's apps: 28 characters starting with "o"."""
        digest = hashlib.sha256(f"open-platform:{user or self.user}".encode()).digest()
        return "o" + base64.urlsafe_b64encode(digest).decode()[:27]

    def handle(self, request: Request) -> Response | None:
        if request.method == "GET" and request.path == AUTHORIZE_PATH:
            return self._authorize(request)
        if request.method == "GET" and request.path == QRCONNECT_PATH:
            return self._qrconnect(request)
        if request.method == "GET" and request.path == ACCESS_TOKEN_PATH:
            return self._access_token(dict(parse_qsl(request.query, keep_blank_values=True)))
        if request.method == "GET" and request.path == USERINFO_PATH:
            return self._userinfo(dict(parse_qsl(request.query, keep_blank_values=True)))
        return None

    # --- the browser's side ----------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if "MicroMessenger" not in request.headers.get("user-agent", ""):
            return html_response(200, _page("请在微信客户端打开链接 (open this link in WeChat)"))
        redirect_uri, scope = params.get("redirect_uri", ""), params.get("scope", "")
        if not params.get("appid"):
            return self._error_page(10012, "appid 不能为空")
        if self.apps.get(params["appid"], ("", ""))[1] != "mp":
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
        return self._send_back(params, params["appid"], scope)

    def _send_back(self, params: dict[str, str], appid: str, scope: str) -> Response:
        code = Code(
            value=secrets.token_hex(16),
            appid=appid,
            openid=self.openid_for(appid=appid),
            scope=scope,
            issued_at=self.clock(),
        )
        with self._lock:
            self.codes[code.value] = code
            self.users_of_codes[code.value] = self.user
        redirect_uri = params["redirect_uri"]
        back = urlencode({"code": code.value, "state": params.get("state", "")})
        return redirect_response(redirect_uri + ("&" if "?" in redirect_uri else "?") + back)

    def _qrconnect(self, request: Request) -> Response:
        """The website app's QR login page, taken as scanned and confirmed by `user` at once."""
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        redirect_uri = params.get("redirect_uri", "")
        if self.apps.get(params.get("appid", ""), ("", ""))[1] != "web":
            return self._error_page(40013, "invalid appid", QRCONNECT_PATH)
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.hostname:
            return self._error_page(10011, "redirect_uri 参数错误", QRCONNECT_PATH)
        if self.domains is not None and target.hostname not in self.domains:
            return self._error_page(10003, "redirect_uri 域名与后台配置不一致", QRCONNECT_PATH)
        if params.get("response_type") != "code":
            return self._error_page(10010, "response_type 参数错误", QRCONNECT_PATH)
        if params.get("scope") != "snsapi_login":
            return self._error_page(10005, "scope 参数错误或没有 scope 权限", QRCONNECT_PATH)
        return self._send_back(params, params["appid"], "snsapi_login")

    def _error_page(self, errcode: int, message: str, path: str = AUTHORIZE_PATH) -> Response:
        with self._lock:
            self.refused.append((path, errcode))
        return html_response(200, _page(f"Oops! Something went wrong:( 错误码 {errcode}: {escape(message)}"))

    # --- the server's side -----------------------------------------------------------------------------------

    def _access_token(self, params: dict[str, str]) -> Response:
        with self._lock:
            if params.get("grant_type") != "authorization_code":
                return self._refuse(40002, "invalid grant_type")
            appid = params.get("appid", "")
            if appid not in self.apps:
                return self._refuse(40013, "invalid appid")
            if params.get("secret") != (self.secret if appid == self.appid else self.apps[appid][0]):
                return self._refuse(40125, "invalid appsecret")
            code = self.codes.get(params.get("code", ""))
            if code is None or code.appid != appid:
                return self._refuse(40029, "invalid code")
            if code.used:
                return self._refuse(40163, "code been used")
            if self.clock() - code.issued_at > CODE_LIFETIME:
                return self._refuse(42003, "code expired")
            code.used = True
            token = AccessToken(
                value=secrets.token_urlsafe(64),
                appid=appid,
                openid=code.openid,
                user=self.users_of_codes.get(code.value, self.user),
                scope=code.scope,
                issued_at=self.clock(),
            )
            self.tokens[token.value] = token
        answer = {
            "access_token": token.value,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "refresh_token": secrets.token_urlsafe(64),
            "openid": code.openid,
            "scope": code.scope,
        }
        if self.open_platform and code.scope != "snsapi_base":
            answer["unionid"] = self.unionid_for(token.user)
        return _json(answer)

    def _userinfo(self, params: dict[str, str]) -> Response:
        with self._lock:
            token = self.tokens.get(params.get("access_token", ""))
            if token is None or self.clock() - token.issued_at > ACCESS_TOKEN_LIFETIME:
                return self._refuse(40001, "invalid credential, access_token is invalid or not latest", USERINFO_PATH)
            if params.get("openid") != token.openid:
                return self._refuse(40003, "invalid openid", USERINFO_PATH)
            if token.scope == "snsapi_base":
                return self._refuse(48001, "api unauthorized", USERINFO_PATH)
        answer = {
            "openid": token.openid,
            "nickname": self.nicknames.get(token.user, token.user),
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
        }
        if self.open_platform:
            answer["unionid"] = self.unionid_for(token.user)
        return _json(answer)

    def _refuse(self, errcode: int, errmsg: str, path: str = ACCESS_TOKEN_PATH) -> Response:
        self.refused.append((path, errcode))
        return _json({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(12)}"})


def _json(body: dict) -> Response:
    return Response(
        200, json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json; encoding=utf-8"}
    )


def _page(text: str) -> str:
    return f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>微信 (fake)</title><p>{text}</p></html>'
