import signal
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from networks.sandbox.server import DEFAULT_MAX_WINDOW, SandboxNetwork, is_loopback


class Command(BaseCommand):
    help = _(
        "Serve the built-in sandbox affiliate network over HTTP on loopback until interrupted (Ctrl-C): a product "
        "feed, link conversion with click tracking, an order report, and control endpoints for tests and the demo."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help=_("a loopback address (default 127.0.0.1)"))
        parser.add_argument("--port", type=int, default=8765, help=_("TCP port (default 8765)"))
        parser.add_argument("--seed", type=int, default=0, help=_("seed of the generated catalogue (default 0)"))
        parser.add_argument("--products", type=int, default=60, help=_("catalogue size (default 60)"))
        parser.add_argument(
            "--max-window-minutes",
            type=int,
            default=int(DEFAULT_MAX_WINDOW.total_seconds() // 60),
            help=_("largest order-report window the API accepts (default 180, as 淘宝联盟)"),
        )

    def handle(self, *args, **options):
        # The control endpoints have no authentication: anyone who can reach them can make up orders.
        if not is_loopback(options["host"]):
            raise CommandError(_("The sandbox network only listens on loopback (127.0.0.1, ::1, localhost)."))
        if not 1 <= options["products"] <= 10_000:
            raise CommandError(_("--products must be between 1 and 10000."))
        try:
            network = SandboxNetwork(
                options["host"],
                options["port"],
                seed=options["seed"],
                products=options["products"],
                max_window=timedelta(minutes=options["max_window_minutes"]),
            )
        except OSError as error:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s") % {**options, "error": error}
            ) from error
        self.stdout.write(_("Sandbox network at %(url)s") % {"url": network.url})
        self.stdout.write(
            _("app key %(key)s, app secret %(secret)s") % {"key": network.app_key, "secret": network.app_secret}
        )
        self.stdout.write(_("Products: %(url)s/  Stop with Ctrl-C.") % {"url": network.url})
        signal.signal(signal.SIGTERM, _interrupt)  # stop as cleanly on `kill` as on Ctrl-C
        try:
            network.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            network.stop()
        self.stdout.write(_("Sandbox network stopped."))


def _interrupt(signum, frame):
    raise KeyboardInterrupt
