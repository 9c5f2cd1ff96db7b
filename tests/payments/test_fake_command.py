"""`manage.py payment_gateways_fake`: the fakes for `make run`, with the settings that point the shop at them."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from config.settings import env_secret
from shops.management.commands.payment_gateways_fake import write_settings
from shops.models import Order
from shops.payments import wechat_oauth
from shops.payments.fakes import PaymentGatewaysFake
from tests.payments.conftest import http

ROOT = Path(__file__).resolve().parents[2]


def test_the_written_settings_let_the_providers_pay_through_the_fakes(
    tmp_path, monkeypatch, settings, order, open_payment
):
    with PaymentGatewaysFake() as gateways:
        gateways.wechatpay.outbox.mode = "hold"
        values = write_settings(gateways, tmp_path / "env")
        lines = (tmp_path / "env").read_text().splitlines()
        assert sorted(line.split("=", 1)[0] for line in lines) == sorted(values)
        assert oct((tmp_path / "wechatpay_merchant_key.pem").stat().st_mode & 0o777) == "0o600"
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        for name in values:
            setting = name.removesuffix("_FILE")
            setattr(settings, setting, env_secret(setting) if name.endswith("_FILE") else values[name])
        settings.WECHAT_OAUTH_APPID = values["WECHATPAY_APPID"]  # its default, read at start

        payment, _action = open_payment(order, "wechatpay", "native")
        gateways.wechatpay.buyer_pays(payment.reference)
        gateways.wechatpay.outbox.release()

        code = (
            http(
                wechat_oauth.authorize_url("http://127.0.0.1/back/", "s"), headers={"User-Agent": "MicroMessenger/8.0"}
            )[2]
            .split("code=", 1)[1]
            .split("&", 1)[0]
        )
        assert wechat_oauth.openid_for_code(code) == gateways.wechatpay.oauth.openid_for()

    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_the_command_refuses_an_address_that_is_not_loopback():
    with pytest.raises(CommandError, match="loopback"):
        call_command("payment_gateways_fake", "--host", "0.0.0.0")  # noqa: S104 - refused, the point of the test


def test_the_command_serves_until_stopped(tmp_path):
    env_file = tmp_path / "env"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "payment_gateways_fake", "--port", "0", "--env-file", str(env_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not env_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        status, body, _location = http(values["ALIPAY_GATEWAY_URL"] + "?method=alipay.trade.query")
        assert status == 200 and b"isv.invalid-app-id" in body  # unsigned: refused, as Alipay refuses it
    finally:
        process.terminate()
        stdout, _stderr = process.communicate(timeout=10)
    assert "Payment gateway fakes at http://127.0.0.1:" in stdout
