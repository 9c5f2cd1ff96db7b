"""A logging filter that keeps secrets and contact details out of every log line (settings.LOGGING installs it on
every handler).

It rewrites the record before any handler formats it:
- values of sensitive keys (password, token, secret, authorization, api key, cookie, card/account number …) in
  dict arguments, in "key=value" / "key: value" / '"key": "value"' text, and in the message itself become "[redacted]";
- email addresses keep their first character and domain ("a***@example.com");
- phone numbers (7 or more digits, separators allowed) keep their last two digits ("***34").
Exception tracebacks are formatted by the handler later, so their text is redacted too (via record.exc_text).
"""

import logging
import re
from collections.abc import Mapping

REDACTED = "[redacted]"
SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|api[_-]?key|cookie|session|csrf|signature|"
    r"account_number|card_number",
    re.IGNORECASE,
)
# key=value, key: value, "key": "value", 'key': 'value' (the value up to a separator or the closing quote). A value
# already "[redacted]" is taken whole, so redacting twice (a log line, then the error report made of it) changes
# nothing more.
KEY_VALUE = re.compile(
    r"""(?P<key>["']?[\w-]*(?:pass(?:word|wd)?|secret|token|authori[sz]ation|api[_-]?key|cookie|signature|"""
    r"""account_number|card_number)[\w-]*["']?)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>\[redacted\]|"[^"]*"|'[^']*'|(?:Bearer|Token|Basic)\s+\S+|[^\s,;&}\]]+)""",
    re.IGNORECASE,
)
EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# 7+ digits with optional separators and a leading +; long enough to skip amounts, ids, dates and times. Not right
# after a closing quote and a space: an access log line's status and size ('"GET / HTTP/1.1" 200 1234').
PHONE = re.compile(r"(?<![\w.:/-])(?<!\" )(?!\d{4}-\d\d-\d\d)\+?\d(?:[\s()-]?\d){6,18}(?![\w.:/-])")


def _mask_phone(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "***" + digits[-2:]


def redact_text(text: str) -> str:
    text = KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text)
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE.sub(_mask_phone, text)


def redact(value, depth: int = 0, max_depth: int = 4):
    """A copy of `value` with sensitive keys' values replaced and contact details masked in its strings, down to
    `max_depth` levels of nesting (a log argument: 4; an error report, whose frames' variables sit deeper: more)."""
    if depth > max_depth:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and SENSITIVE_KEY.search(key) else redact(item, depth + 1, max_depth)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item, depth + 1, max_depth) for item in value)
    return value  # anything else is formatted into the message, and the message is redacted


class RedactingFilter(logging.Filter):
    """Installed on every handler: formats the message with its arguments (dicts among them with their sensitive
    keys' values replaced first), redacts the text, and stores it back without arguments; the exception text is
    redacted as well. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.args:
                if isinstance(record.args, Mapping):
                    record.args = redact(record.args)
                else:
                    record.args = tuple(redact(arg) if isinstance(arg, Mapping) else arg for arg in record.args)
            record.msg, record.args = redact_text(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact_text(record.exc_text)
        except Exception:  # noqa: S110 - a log line must never be lost because of the filter
            pass
        return True


def redact_every_handler() -> None:
    """Give every handler of every logger the RedactingFilter if it has none: for handlers that settings.LOGGING
    does not configure, such as those the Celery worker and beat install when they take over the root logger."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # a PlaceHolder in loggerDict has no handlers
            if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
                handler.addFilter(RedactingFilter())
