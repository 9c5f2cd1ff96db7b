"""Password spraying: a limit of accounts that may fail to log in from one client address.

django-axes counts failures per account and address, so one address trying one password on many accounts is never
stopped by it. Here each account (or unknown login: accounts.lockout.login_identifier's key) that fails from an
address counts once per window (settings.RATE_LIMIT_LOGIN_ACCOUNTS, in the cache: core.ratelimit); once the limit
is reached, accounts.backends.LoginLockoutBackend refuses every login from that address until the window ends, the
right password included, with the lockout page (accounts.lockout.lockout_response), the same whether or not the
account exists. Logins refused before a password was checked (a lockout) count nothing, and a successful login takes
its own account's failure back (a typo, not spraying): people behind one office address who mistype and then log in
never add up to a lockout. The counting is called from accounts.signals.
"""

from django.conf import settings

from core.client_ip import client_ip
from core.ratelimit import ip_key, rate_limit_count_once, rate_limit_forget, rate_limit_reached

SCOPE = "login_accounts"


def _address(request) -> str:
    return ip_key(client_ip(request))  # a keyed hash: no raw address in the cache


def address_lockout_retry_after(request) -> int:
    """0 while the client's address may try to log in, else the seconds until it may again."""
    return rate_limit_reached(SCOPE, _address(request), settings.RATE_LIMIT_LOGIN_ACCOUNTS)


def address_failure_record(request, account: str) -> None:
    """Count a failed login to `account` ("user:<id>" or "login:<typed>") against the client's address, once per
    window however often that account fails."""
    rate_limit_count_once(SCOPE, _address(request), settings.RATE_LIMIT_LOGIN_ACCOUNTS, account)


def address_failure_forgiven(request, user) -> None:
    """A successful login takes its account's failure back out of the address's count."""
    rate_limit_forget(SCOPE, _address(request), settings.RATE_LIMIT_LOGIN_ACCOUNTS, f"user:{user.pk}")
