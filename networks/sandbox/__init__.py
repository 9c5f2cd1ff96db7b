"""The built-in `sandbox` affiliate network (server.py), for tests and the demo."""

from .server import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, SandboxError, SandboxNetwork

__all__ = ["DEFAULT_APP_KEY", "DEFAULT_APP_SECRET", "SandboxError", "SandboxNetwork"]
