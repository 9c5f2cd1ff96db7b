"""The two steps every "code by SMS" page shares (log in, sign up on the join page, bind a phone): first the phone
(and, to sign up, the name), then the 6-digit code sent to it. Between the two, the session holds what was typed
(no code: only its hash, in the cache, core.one_time_codes), for as long as a code lives.

The pages' words are the same whether or not the number has an account (accounts.login_codes).
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from accounts.forms import CodeForm
from accounts.login_codes import login_code_check, login_code_send
from core.client_ip import client_ip
from core.ratelimit import ip_key

SESSION_KEY = "login_code_pending"


@dataclass
class Step:
    """What the page shows now: `code_form` once a code was asked for (then `pending` holds what was typed)."""

    code_form: CodeForm | None = None
    pending: dict | None = None
    retry_after: int = 0  # a limit refused the request: answer 429
    verified: dict | None = None  # the code was right: what was typed with the phone


def pending_for(request, purpose: str) -> dict | None:
    pending = request.session.get(SESSION_KEY)
    if not isinstance(pending, dict) or pending.get("purpose") != purpose:
        return None
    if time.time() - pending.get("at", 0) > settings.LOGIN_CODE_SECONDS:
        return None
    return pending


def pending_clear(request) -> None:
    request.session.pop(SESSION_KEY, None)


def code_send_step(request, *, purpose: str, phone: str, **kept) -> Step:
    """Ask for a code to `phone`; on success the page moves to the code step and says the constant sentence."""
    sent = login_code_send(phone=phone, client=ip_key(client_ip(request)), purpose=purpose)
    if sent.retry_after:
        return Step(retry_after=sent.retry_after)
    request.session[SESSION_KEY] = {"purpose": purpose, "phone": phone, "at": int(time.time()), **kept}
    return Step(code_form=CodeForm(), pending=request.session[SESSION_KEY])


def code_check_step(request, *, purpose: str) -> Step:
    """Check the code typed for the pending phone; `verified` when right (the pending state is used up)."""
    pending = pending_for(request, purpose)
    form = CodeForm(request.POST)
    if pending is None:
        return Step()
    if form.is_valid():
        if login_code_check(phone=pending["phone"], code=form.cleaned_data["code"], purpose=purpose):
            pending_clear(request)
            return Step(verified=pending)
        form.add_error("code", _("That code is not right, or it has expired. Check the SMS, or ask for a new code."))
    return Step(code_form=form, pending=pending)
