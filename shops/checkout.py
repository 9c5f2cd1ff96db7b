"""What the buyer's session remembers between placing an order and paying it (shops/views.py uses it).

- The next step of paying each order (`step_keep`): where the browser goes next (Alipay's cashier, WeChat Pay's H5
  page, WeChat's OAuth page), or what the order's "paying" page shows (a Native QR code, the WeChat Pay JSAPI
  call). Kept by order number, for the payment it belongs to; a few orders at most.
- WeChat's OAuth on its way (`oauth_begin`, `oauth_finish`): the `state` sent to WeChat, the order and the method
  to start once the openid is known. `oauth_finish` accepts the state once, within OAUTH_MAX_AGE seconds, and only
  the one this session sent: a code another browser obtained is never exchanged here (CSRF).
- The buyer's openid (`openid`), for WeChat Pay JSAPI: in the session only, never in the database.
"""

from shops.payments.wechat_oauth import state_begin, state_finish

STEPS_SESSION_KEY = "payment_steps"
OAUTH_SESSION_KEY = "wechat_oauth"
OPENID_SESSION_KEY = "wechat_openid"
OAUTH_MAX_AGE = 600  # seconds between leaving for WeChat's authorize page and coming back
STEPS_KEPT = 5


def step_keep(session, number: str, step: dict) -> None:
    """Remember the next step of paying order `number` (a JSON-able dict with "kind"), replacing the one before."""
    steps = {key: value for key, value in session.get(STEPS_SESSION_KEY, {}).items() if key != number}
    steps[number] = step
    session[STEPS_SESSION_KEY] = dict(list(steps.items())[-STEPS_KEPT:])


def step(session, number: str) -> dict | None:
    return session.get(STEPS_SESSION_KEY, {}).get(number)


def step_drop(session, number: str) -> None:
    steps = session.get(STEPS_SESSION_KEY, {})
    if number in steps:
        session[STEPS_SESSION_KEY] = {key: value for key, value in steps.items() if key != number}


def oauth_begin(session, *, number: str, method: str) -> str:
    """A fresh OAuth state for paying order `number` with `method` once WeChat says who the buyer is."""
    return state_begin(session, OAUTH_SESSION_KEY, order=number, method=method)


def oauth_finish(session, state: str) -> dict | None:
    """The OAuth on its way ({"order", "method"}) if `state` is the one this session sent, recently; it is used up
    either way, so a state works once."""
    return state_finish(session, OAUTH_SESSION_KEY, state, max_age=OAUTH_MAX_AGE)


def openid(session) -> str:
    return session.get(OPENID_SESSION_KEY, "")


def openid_keep(session, value: str) -> None:
    session[OPENID_SESSION_KEY] = value
