"""The client's IP address, one rule for every caller: rate limits, login lockouts, unique-visitor counting.

Without a proxy it is the connecting address (REMOTE_ADDR). Behind proxies that append the address they received
the request from to X-Forwarded-For (TRUST_X_FORWARDED_FOR=1), it is the entry our own nearest proxies wrote:
with TRUSTED_PROXY_COUNT proxies in a row, the N-th entry from the right. Entries further left were written by the
client (or its own proxies) and can say anything, so they are never used.
"""

from django.conf import settings


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if not settings.TRUST_X_FORWARDED_FOR:
        return remote
    entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if not entries:
        return remote
    proxies = max(1, settings.TRUSTED_PROXY_COUNT)
    # Fewer entries than proxies: every entry there was written by one of ours, the leftmost is the furthest out.
    return entries[-proxies] if len(entries) >= proxies else entries[0]
