"""Benchmarks (run as scripts: `.venv/bin/python bench/<name>.py`); a package so `bench.settings` imports."""


def production_secrets() -> dict[str, str]:
    """The environment a benchmark's production-settings process (DEBUG=0) needs to start: fresh secrets of its own
    (the deployment checks refuse the development ones: config/checks.py), and the sandbox providers allowed, as on
    staging."""
    import secrets

    from cryptography.fernet import Fernet

    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PAYMENTS_SANDBOX_SECRET": secrets.token_urlsafe(32),
        "ALLOW_SANDBOX_PROVIDERS": "1",
        "IDENTITY_KEYS": Fernet.generate_key().decode(),
        "IDENTITY_INDEX_KEY": secrets.token_urlsafe(32),
    }
