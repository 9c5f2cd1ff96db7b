"""Connectors to external affiliate networks: one class per network, behind `Connector` (base.py).

`get_connector(code)` returns the configured connector of a network; credentials come from environment
variables, never from the database:

    NETWORK_<CODE>_URL         the API's base URL
    NETWORK_<CODE>_APP_KEY     the app key
    NETWORK_<CODE>_APP_SECRET  the app secret (signs every call)
    NETWORK_<CODE>_TIMEOUT     seconds per HTTP call (default 10)

The sandbox has defaults for all of them (http://127.0.0.1:8765 and the sandbox's public key and secret), so
tests and the demo need nothing set. 淘宝联盟 (`taobao`, TaobaoConnector: 淘宝开放平台's /router/rest) has no
defaults: until NETWORK_TAOBAO_URL, _APP_KEY and _APP_SECRET are set it is "not configured", is left out of the
periodic sync, and its orders come in through the report-file import (networks/imports.py) as before. 京东联盟
(`jd`, JdConnector: JD's routerjson gateway) likewise, with NETWORK_JD_URL, _APP_KEY and _APP_SECRET.
"""

import os

from .base import Connector, ConnectorError
from .jd import JdConnector
from .sandbox import SandboxConnector
from .taobao import TaobaoConnector

CONNECTORS: dict[str, type[Connector]] = {
    "sandbox": SandboxConnector,
    "taobao": TaobaoConnector,
    "jd": JdConnector,
}

# Defaults per code; a code without an entry needs every variable set.
_DEFAULTS: dict[str, dict[str, str]] = {
    "sandbox": {
        "URL": "http://127.0.0.1:8765",
        "APP_KEY": "sandbox-app-key",
        "APP_SECRET": "sandbox-app-secret",  # the sandbox's public default (networks/sandbox/server.py)
    }
}


class UnknownConnector(LookupError):
    """No connector has this code."""


def connector_settings(code: str) -> dict[str, str]:
    """The settings of a network that are set (in the environment, or by default for the sandbox when DEBUG): a dict of
    URL, APP_KEY, APP_SECRET, TIMEOUT → value; empty when nothing is configured. Holds the secret: never show it."""
    from django.conf import settings

    prefix = f"NETWORK_{code.upper()}_"
    # The sandbox's built-in defaults (a public secret, a loopback port) only in development: in production a
    # network, the sandbox included, syncs only with its variables set explicitly.
    values = dict(_DEFAULTS.get(code, {})) if settings.DEBUG else {}
    for name in ("URL", "APP_KEY", "APP_SECRET", "TIMEOUT"):
        if os.environ.get(prefix + name):
            values[name] = os.environ[prefix + name]
    return values


def connector_configured(code: str) -> bool:
    """Whether `code` has a connector and its URL, app key and app secret are all set."""
    values = connector_settings(code)
    return code in CONNECTORS and all(values.get(name) for name in ("URL", "APP_KEY", "APP_SECRET"))


def get_connector(code: str, *, base_url: str | None = None) -> Connector:
    """The connector of network `code`, configured from the environment; `base_url` overrides NETWORK_<CODE>_URL.

    Raises UnknownConnector for a code not in CONNECTORS, ConnectorError when a setting is missing."""
    try:
        connector_class = CONNECTORS[code]
    except KeyError:
        raise UnknownConnector(code) from None
    values = connector_settings(code)
    if base_url:
        values["URL"] = base_url
    missing = [f"NETWORK_{code.upper()}_{name}" for name in ("URL", "APP_KEY", "APP_SECRET") if not values.get(name)]
    if missing:
        raise ConnectorError(f"{code}: not configured, set {', '.join(missing)}")
    try:
        timeout = float(values.get("TIMEOUT", "10"))
    except ValueError:
        raise ConnectorError(f"{code}: NETWORK_{code.upper()}_TIMEOUT is not a number") from None
    return connector_class(
        base_url=values["URL"], app_key=values["APP_KEY"], app_secret=values["APP_SECRET"], timeout=timeout
    )


__all__ = ["CONNECTORS", "UnknownConnector", "connector_configured", "connector_settings", "get_connector"]
