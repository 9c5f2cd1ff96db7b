"""Local fakes of WeChat Pay API v3 and Alipay's open API, for tests and `make run` (never for production).

`PaymentGatewaysFake` serves both on one loopback port: WeChat Pay under /v3/… (WECHATPAY_GATEWAY_URL is the
server's URL) and Alipay at /gateway.do (ALIPAY_GATEWAY_URL is the server's URL + "/gateway.do"); the buyer's pages
are under /fake/. Each instance makes its own RSA-2048 keys. Tests start one in a fixture
(`with PaymentGatewaysFake() as gateways:`); `manage.py payment_gateways_fake --port N` serves one until stopped.
"""

from shops.payments.fakes.alipay import AlipayFake
from shops.payments.fakes.common import LoopbackServer, Request, Response
from shops.payments.fakes.wechatpay import WeChatPayFake

__all__ = ["AlipayFake", "PaymentGatewaysFake", "WeChatPayFake"]


class PaymentGatewaysFake:
    """Both fakes behind one loopback HTTP server: `with PaymentGatewaysFake() as gateways: gateways.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        wechatpay: WeChatPayFake | None = None,
        alipay: AlipayFake | None = None,
    ):
        self.wechatpay = wechatpay or WeChatPayFake()
        self.alipay = alipay or AlipayFake()
        self._server = LoopbackServer(host, port, self._route)
        self.wechatpay.base_url = self.alipay.base_url = self._server.url

    @property
    def url(self) -> str:
        return self._server.url

    def _route(self, request: Request) -> Response:
        for gateway in (self.wechatpay, self.alipay):
            response = gateway.handle(request)
            if response is not None:
                return response
        return Response(404, b"not found", {"Content-Type": "text/plain"})

    def start(self) -> "PaymentGatewaysFake":
        self._server.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "PaymentGatewaysFake":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
