import os
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from shops.payments.fakes import PaymentGatewaysFake
from shops.payments.fakes.common import is_loopback


class Command(BaseCommand):
    help = _(
        "Serve local fakes of WeChat Pay and Alipay on loopback until interrupted (Ctrl-C), with fresh keys, and "
        "write the settings that point the shop at them to an environment file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help=_("a loopback address (default 127.0.0.1)"))
        parser.add_argument("--port", type=int, default=8770, help=_("TCP port (default 8770)"))
        parser.add_argument(
            "--env-file",
            default="var/payment-gateways-fake/env",
            help=_("where to write the settings; the keys go to files beside it (default %(default)s)"),
        )

    def handle(self, *args, **options):
        # The buyer's pages pay without a password: anyone who reaches them could "pay" an order.
        if not is_loopback(options["host"]):
            raise CommandError(_("The payment gateway fakes only listen on loopback (127.0.0.1, ::1, localhost)."))
        try:
            gateways = PaymentGatewaysFake(options["host"], options["port"])
        except OSError as error:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s") % {**options, "error": error}
            ) from error
        env_file = Path(options["env_file"])
        # A person trying the payout rails: any Alipay login is an account (its name the one given); WeChat Pay's
        # transfer bills are confirmed on the fake's page of waiting bills (/fake/wechatpay/transfers).
        gateways.alipay.accounts_open = True
        write_settings(gateways, env_file)
        self.stdout.write(_("Payment gateway fakes at %(url)s") % {"url": gateways.url})
        self.stdout.write(_("Settings written to %(path)s. Stop with Ctrl-C.") % {"path": env_file})
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            gateways.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            gateways.stop()


WECHAT_LOGIN_FAKE_WEB_APPID = "wx0fa4e0000000web1"  # the fake website app's AppID (18 characters, as WeChat's)


def write_settings(gateways: PaymentGatewaysFake, env_file: Path) -> dict[str, str]:
    """Write the fakes' merchant keys to files (0600) beside `env_file`, and to `env_file` the WECHATPAY_*,
    ALIPAY_*, WECHAT_OAUTH_* and WECHAT_LOGIN_* settings naming them; return those settings."""
    env_file.parent.mkdir(parents=True, exist_ok=True)
    wechat, alipay = gateways.wechatpay.merchant_settings(), gateways.alipay.merchant_settings()
    files = {
        "WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": ("wechatpay_merchant_key.pem", wechat["merchant_private_key"]),
        "WECHATPAY_APIV3_KEY_FILE": ("wechatpay_apiv3_key", wechat["apiv3_key"]),
        "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": ("wechatpay_platform_public_key.pem", wechat["platform_public_key"]),
        "ALIPAY_APP_PRIVATE_KEY_FILE": ("alipay_app_private_key.pem", alipay["app_private_key"]),
        "ALIPAY_PUBLIC_KEY_FILE": ("alipay_public_key.pem", alipay["alipay_public_key"]),
        "WECHAT_OAUTH_SECRET_FILE": ("wechat_oauth_secret", gateways.wechatpay.oauth.secret),
    }
    # Logging in with WeChat (accounts.wechat_login): the same official account inside WeChat's browser, and a
    # website app of the same Open Platform account for the QR login on a desktop (the fake takes the QR as scanned).
    oauth = gateways.wechatpay.oauth
    web_appid = WECHAT_LOGIN_FAKE_WEB_APPID
    web_secret = oauth.apps[web_appid][0] if web_appid in oauth.apps else oauth.add_app(appid=web_appid, kind="web")
    oauth.open_platform = True
    files["WECHAT_LOGIN_WEB_SECRET_FILE"] = ("wechat_login_web_secret", web_secret)
    files["WECHAT_LOGIN_MP_SECRET_FILE"] = ("wechat_login_mp_secret", oauth.secret)
    # The payout rails (issue #21 part C): Alipay transfers are made in the certificate mode.
    certificates = gateways.alipay.certificate_settings()
    files.update(
        {
            "ALIPAY_APP_CERT_FILE": ("alipay_app_cert.crt", certificates["app_cert"]),
            "ALIPAY_PUBLIC_CERT_FILE": ("alipay_public_cert.crt", certificates["alipay_public_cert"]),
            "ALIPAY_ROOT_CERT_FILE": ("alipay_root_cert.crt", certificates["alipay_root_cert"]),
        }
    )
    values = {
        "WECHATPAY_GATEWAY_URL": gateways.url,
        "WECHATPAY_MCHID": wechat["mchid"],
        "WECHATPAY_APPID": wechat["appid"],
        "WECHATPAY_MERCHANT_SERIAL_NO": wechat["merchant_serial_no"],
        "WECHATPAY_PLATFORM_PUBLIC_KEY_ID": wechat["platform_public_key_id"],
        "ALIPAY_GATEWAY_URL": gateways.alipay.gateway_url,
        "ALIPAY_APP_ID": alipay["app_id"],
        # WeChat's web OAuth (JSAPI's openid) of the same official account; WECHAT_OAUTH_APPID is WECHATPAY_APPID.
        "WECHAT_OAUTH_URL": gateways.url,
        "WECHAT_API_URL": gateways.url,
        "WECHAT_LOGIN_WEB_APPID": web_appid,
        "WECHAT_LOGIN_MP_APPID": wechat["appid"],
        "WECHAT_LOGIN_QR_URL": gateways.url + "/connect/qrconnect",
        "WECHAT_LOGIN_MP_URL": gateways.url + "/connect/oauth2/authorize",
        "WECHAT_LOGIN_API_URL": gateways.url,
    }
    for setting, (name, content) in files.items():
        path = env_file.parent / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(content + "\n", encoding="utf-8")
        values[setting] = str(path.resolve())
    temporary = env_file.with_suffix(".tmp")
    temporary.write_text("".join(f"{name}={value}\n" for name, value in values.items()), encoding="utf-8")
    os.replace(temporary, env_file)  # whole or not at all: `make run` waits for it
    return values


def _interrupt(signum, frame):
    raise KeyboardInterrupt
