"""Error reports to Sentry (or any server that speaks its protocol: GlitchTip, a self-hosted Sentry) when SENTRY_DSN
is set (issue #26), from the web processes, the Celery workers and beat.

Nothing personal leaves: `send_default_pii` is off (no cookies, no user, no client address), and every event goes
through the same redaction as the logs (core.logging: sensitive keys' values replaced, email addresses and phone
numbers masked), all the way down to the stack frames' variables, before the SDK sends it.
"""

from core.logging import redact

EVENT_DEPTH = 16  # exception → values → stacktrace → frames → vars → a variable's own nesting


def scrub(event: dict, _hint: dict | None = None) -> dict:
    """Sentry's before_send: the event, redacted."""
    return redact(event, max_depth=EVENT_DEPTH)


def error_reports_start(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        before_send=scrub,
        before_send_transaction=scrub,
        traces_sample_rate=traces_sample_rate,
        max_request_body_size="never",  # a request's body (a form with a phone number, a password) is never sent
    )
