"""A request id for every web request, carried into the Celery tasks it sends (issue #26), so that one search of
the logs finds what a request did and what its tasks did after it.

- Each request is bound an id as the handler starts it (Django's `request_started`, until `request_finished`): the
  `X-Request-ID` header a proxy or load balancer set, when it looks like one (8–64 letters, digits, `.`, `_`, `-`),
  or a new one. `RequestIdMiddleware` (first in MIDDLEWARE) answers with it in `X-Request-ID`.
- `RequestIdFilter` (on every handler in settings.LOGGING) puts it on each log record as `request_id` ("-" outside
  a request or task): the JSON logs (LOG_FORMAT=json) carry it as a field.
- A task sent while an id is bound carries it in its message's headers (Celery's `before_task_publish`); the worker
  binds it while the task runs (`task_prerun`, `task_postrun`), so the task's log lines carry the request's id. A
  task the beat sends has none; tasks run in-process (the embedded default) see the request's own.
"""

import contextvars
import logging
import re
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished, request_started
from django.dispatch import receiver

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
ACCEPTED = re.compile(r"[A-Za-z0-9._-]{8,64}")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_task_tokens: dict[str, contextvars.Token] = {}


def request_id() -> str:
    """The id bound to this request or task; "" when there is none."""
    return _current.get()


def request_id_from(incoming: str | None) -> str:
    """The incoming header's id when it looks like one, else a new one (32 hex digits)."""
    if incoming and ACCEPTED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@receiver(request_started)
def _request_binds_its_id(environ=None, scope=None, **_kwargs) -> None:
    """Bound from the handler's first signal to its last (request_finished), so the lines Django writes after the
    middleware returned (django.request's "Not Found: …", a 500's traceback) carry it too."""
    incoming = None
    if environ is not None:
        incoming = environ.get("HTTP_X_REQUEST_ID")
    elif scope is not None:
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
    _current.set(request_id_from(incoming))


@receiver(request_finished)
def _request_unbinds_its_id(**_kwargs) -> None:
    _current.set("")


class RequestIdMiddleware:
    """Puts the request's id on the request (`request.request_id`) and in the response's X-Request-ID. Binds one
    itself when the handler's signal did not (a request built without a handler)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        value = _current.get()
        token = None
        if not value:
            value = request_id_from(request.headers.get(HEADER))
            token = _current.set(value)
        request.request_id = value
        try:
            response = self.get_response(request)
        finally:
            if token is not None:
                _current.reset(token)
        response[HEADER] = value
        return response


class RequestIdFilter(logging.Filter):
    """Puts the bound id on every record (`request_id`, "-" when none). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _current.get() or "-"
        return True


@before_task_publish.connect
def _task_carries_the_request_id(headers=None, **_kwargs) -> None:
    value = _current.get()
    if value and headers is not None:
        headers.setdefault(TASK_HEADER, value)


@task_prerun.connect
def _task_binds_its_request_id(task_id=None, task=None, **_kwargs) -> None:
    value = getattr(task.request, TASK_HEADER, None) if task is not None else None
    if value and ACCEPTED.fullmatch(str(value)) and task_id:
        _task_tokens[task_id] = _current.set(str(value))


@task_postrun.connect
def _task_unbinds_its_request_id(task_id=None, **_kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _current.reset(token)
