"""The project's settings plus the benchmark's URLs (bench/urls.py), so the bare view never reaches production."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
