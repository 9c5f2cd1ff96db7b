"""The built-in `sandbox` affiliate network (server.py), for tests and the demo."""

# Real networks' wire protocols, spoken over the sandbox's state (each module registers itself in PROTOCOLS).
from . import (
    jd,  # noqa: F401 - registers the JD protocol
    taobao,  # noqa: F401 - registers the TOP protocol
)
from .server import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, PROTOCOLS, SandboxError, SandboxNetwork

__all__ = ["DEFAULT_APP_KEY", "DEFAULT_APP_SECRET", "PROTOCOLS", "SandboxError", "SandboxNetwork"]
