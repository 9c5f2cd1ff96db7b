"""The identity verification port: the console verifier never logs a whole name or number; the Tencent Cloud adapter
(the official SDK) against a local fake of IdCardVerification that checks the TC3-HMAC-SHA256 signature and answers
with the API's result codes."""

import logging

import pytest

from core import id_verification as port
from core.id_verification import IdVerificationRejected, IdVerificationUnavailable, Outcome
from tests.accounts import tencent_faceid_fake as fake_module
from tests.accounts.tencent_faceid_fake import TencentFaceIdFake

NUMBER = "11010519491231002X"
NAME = "王芳"


def test_the_console_verifier_matches_and_logs_masked_values(settings, caplog):
    settings.IDENTITY_VERIFIER = "core.id_verification.ConsoleIdVerifier"
    with caplog.at_level(logging.INFO, logger="core.id_verification"):
        assert port.id_verify(name=NAME, number=NUMBER).outcome == Outcome.MATCH
        assert port.id_verify(name="Xu Test", number=NUMBER).outcome == Outcome.MISMATCH
    assert "110***********002X" in caplog.text and "王*" in caplog.text
    assert NUMBER not in caplog.text and NAME not in caplog.text


@pytest.fixture
def tencent(settings):
    pytest.importorskip("tencentcloud.faceid", reason="needs tencentcloud-sdk-python-faceid (requirements.txt)")
    with TencentFaceIdFake(people={NUMBER: NAME}) as fake:
        settings.IDENTITY_VERIFIER = "core.id_verification.TencentIdVerifier"
        settings.IDENTITY_TENCENT_SECRET_ID = fake_module.SECRET_ID
        settings.IDENTITY_TENCENT_SECRET_KEY = fake_module.SECRET_KEY
        settings.IDENTITY_TENCENT_ENDPOINT = fake.url
        settings.IDENTITY_VERIFY_TIMEOUT = 5
        yield fake


def test_a_signed_request_with_the_right_name_matches(tencent, caplog):
    with caplog.at_level(logging.INFO, logger="core.id_verification"):
        result = port.id_verify(name=NAME, number=NUMBER)
    assert (result.outcome, result.code) == (Outcome.MATCH, "0")
    assert result.reference
    assert tencent.checked == [{"name": NAME, "number": NUMBER}]
    assert NUMBER not in caplog.text and NAME not in caplog.text


def test_another_name_is_a_mismatch_and_bad_values_are_invalid(tencent):
    assert port.id_verify(name="王五", number=NUMBER).outcome == Outcome.MISMATCH
    assert port.id_verify(name=NAME, number="110105194912310021").outcome == Outcome.INVALID  # check digit (-2)
    assert port.id_verify(name="王5", number=NUMBER).outcome == Outcome.INVALID  # name (-3)
    unknown = port.id_verify(name=NAME, number="440524198001010013")
    assert (unknown.outcome, unknown.code) == (Outcome.INVALID, "-5")  # no record


def test_a_wrong_secret_fails_the_signature_check_and_is_a_refusal(tencent, settings):
    settings.IDENTITY_TENCENT_SECRET_KEY = "not-the-secret"
    with pytest.raises(IdVerificationRejected) as refused:
        port.id_verify(name=NAME, number=NUMBER)
    assert refused.value.code == "AuthFailure.SignatureFailure"
    assert refused.value.transient is False
    assert tencent.checked == []


@pytest.mark.parametrize("result", ["-4", "-6", "-7"])
def test_the_authoritys_outages_and_the_daily_limit_mean_later(tencent, result):
    tencent.result_next = result
    with pytest.raises(IdVerificationUnavailable) as later:
        port.id_verify(name=NAME, number=NUMBER)
    assert later.value.code == result
    assert later.value.transient is True


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "InternalError", "ResourceUnavailable.NotReady"])
def test_throttling_and_service_errors_mean_later(tencent, code):
    tencent.fail_next = code
    with pytest.raises(IdVerificationUnavailable) as later:
        port.id_verify(name=NAME, number=NUMBER)
    assert later.value.code == code


def test_an_unreachable_provider_means_later(tencent, settings):
    settings.IDENTITY_TENCENT_ENDPOINT = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(IdVerificationUnavailable):
        port.id_verify(name=NAME, number=NUMBER)
