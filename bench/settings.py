"""The project's settings plus the benchmark's URLs (bench/urls.py), so the bare view never reaches production."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# wrk sends every request from one address: a limit this high keeps the redirect's rate-limit counter running (its
# cost is part of what is measured) without ever answering 429.
RATE_LIMIT_REDIRECT = "1000000000/minute"
