"""Logs carry no passwords, tokens or full contact details (core.logging.RedactingFilter on every handler), and
error reports (the mail staff get on a 500) hide what the person typed into a password or contact field."""

import logging
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from core.logging import RedactingFilter, redact_text


def test_every_configured_handler_redacts():
    handlers = settings.LOGGING["handlers"]

    assert handlers and all("redact" in handler.get("filters", []) for handler in handlers.values())
    installed = [
        handler
        for logger in (logging.getLogger(), logging.getLogger("django"), logging.getLogger("referrals.tree"))
        for handler in logger.handlers
        if not type(handler).__module__.startswith("_pytest")  # pytest's own capture handlers
    ]
    assert installed
    assert all(any(isinstance(f, RedactingFilter) for f in handler.filters) for handler in installed)


def test_a_log_line_with_secrets_and_contact_details_comes_out_redacted(caplog):
    logger = logging.getLogger("shops.test")
    caplog.handler.addFilter(RedactingFilter())

    with caplog.at_level(logging.INFO):
        logger.info(
            "login password=%s token: %s for %s (%s)",
            "hunter2",
            "tok_live_9f8e7d",
            "li.na@example.com",
            "+86 138-0013-8000",
        )
        logger.info("payload %s", {"password": "hunter2", "api_key": "k-123", "email": "wang@example.com", "qty": 3})
        logger.warning("Authorization: Bearer abc.def.ghi on order %s, total %s", "CPS-2026-000042", "1234567.89")

    text = caplog.text
    for secret in ("hunter2", "tok_live_9f8e7d", "li.na@", "138-0013-8000", "k-123", "wang@", "abc.def.ghi"):
        assert secret not in text
    assert "l***@example.com" in text and "***00" in text
    assert "'qty': 3" in text and "1234567.89" in text and "CPS-2026-000042" in text
    assert "[redacted]" in text


def test_an_exception_text_is_redacted_too(caplog):
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise ValueError("bad secret=swordfish for li.na@example.com")
    except ValueError:
        logging.getLogger("shops.test").exception("failed")

    assert "swordfish" not in caplog.text and "li.na@" not in caplog.text


def failing_view_report(view, data):
    request = RequestFactory().post("/login/", data)
    request._dont_enforce_csrf_checks = True
    try:
        view(request)
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        return reporter.get_traceback_text()
    raise AssertionError("the view did not fail")


@pytest.mark.django_db
def test_an_error_report_for_a_failing_login_hides_the_password(monkeypatch):
    from django.contrib.auth import views as auth_views

    from accounts.forms import LoginForm

    def explode(self):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(LoginForm, "clean", explode)
    view = auth_views.LoginView.as_view(authentication_form=LoginForm)

    report = failing_view_report(view, {"username": "li.na@example.com", "password": "hunter2-secret"})

    assert "hunter2-secret" not in report
    assert "password" in report  # the key is listed, its value is starred out


@pytest.mark.django_db
def test_an_error_report_for_a_failing_checkout_hides_the_buyers_contact(monkeypatch, client):
    from shops import views
    from tests.factories import shop_with_products

    shop = shop_with_products()
    product = shop.listings.first().product
    client.post(f"/s/{shop.slug}/p/{product.pk}/", {"quantity": 1})

    def explode(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views, "order_place", explode)
    request = RequestFactory().post(
        f"/s/{shop.slug}/checkout/",
        {"name": "Wang Fang", "phone": "13900001111", "email": "wf@example.com", "address": "1 Nanjing Road"},
    )
    request.session = client.session
    request.user = AnonymousUser()
    request._dont_enforce_csrf_checks = True
    try:
        views.checkout(request, slug=shop.slug)
    except RuntimeError:
        report = ExceptionReporter(request, *sys.exc_info()).get_traceback_text()
    else:
        raise AssertionError("the view did not fail")

    for secret in ("13900001111", "wf@example.com", "1 Nanjing Road"):
        assert secret not in report


def test_an_access_log_line_keeps_its_status_and_size_but_not_a_phone_in_the_address(caplog):
    # runserver's and gunicorn's access lines: '"GET /path HTTP/1.1" 200 1234' (status, then size in bytes)
    logger = logging.getLogger("django.server")
    caplog.handler.addFilter(RedactingFilter())

    with caplog.at_level(logging.INFO, logger="django.server"):
        logger.info('"%s" %s %s', "GET /orders/lookup/?contact=13800138000 HTTP/1.1", "200", "1234")

    assert caplog.records[-1].getMessage() == '"GET /orders/lookup/?contact=***00 HTTP/1.1" 200 1234'


def test_redacting_twice_changes_nothing_more():
    """A log line redacted by the handler's filter may be redacted again (an error report made of it)."""
    line = 'refund for li.na@example.com token=abc123 phone 13800138000 {"secret": "s3"} Authorization: Bearer x.y'
    once = redact_text(line)
    assert "abc123" not in once and "s3" not in once and "x.y" not in once
    assert redact_text(once) == once
