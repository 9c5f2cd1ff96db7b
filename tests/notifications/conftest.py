import pytest

from core import sms


@pytest.fixture(autouse=True)
def _sms_outbox(settings):
    """SMS kept in core.sms.outbox (like Django's mail.outbox), emptied for each test."""
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"
    settings.LANGUAGE_CODE = "en"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()
