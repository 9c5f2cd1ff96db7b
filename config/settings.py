"""Settings, all from environment variables (SPEC §9).

With nothing set this is the embedded default: SQLite, Celery tasks run eagerly
in-process, local-memory cache, DEBUG on. Production sets DEBUG=0, SECRET_KEY,
DATABASE_URL (PostgreSQL), CELERY_BROKER_URL and REDIS_URL; README lists every setting.
"""

from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEV_SECRET_KEY = "django-insecure-embedded-default-do-not-use-in-production"  # noqa: S105 - refused when DEBUG=0

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY (a long random string) when DEBUG=0.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mptt",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "referrals",
    "shops",
    "commissions",
    "payouts",
    "staff",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves static files from the app (collectstatic first); in DEBUG runserver does.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise SQLite writers up front instead of failing
    # half-way with "database is locked"; the timeout lets them queue.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_URL = env.str("CACHE_URL", default="")
if CACHE_URL:
    CACHES = {"default": env.cache_url("CACHE_URL")}
elif REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cps"}}

# --- Users and auth -----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrPhoneBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "referrals:dashboard"
LOGOUT_REDIRECT_URL = "home"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Staff", address) for address in env.list("ADMIN_EMAILS", default=[])]

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production) ----------------------------------------------------
if not DEBUG:
    # Only behind a proxy that overwrites X-Forwarded-Proto; otherwise clients could claim HTTPS.
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "referrals.tree": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
        # One line per task run is noise in the embedded default, where tasks run in-process.
        "celery.app.trace": {"level": env.str("CELERY_TRACE_LOG_LEVEL", default="WARNING")},
    },
}

# --- Celery -------------------------------------------------------------------
# No broker configured: the embedded default runs every task eagerly in-process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Early acks by default: a task that is not idempotent must not run twice. Money
# tasks, which are idempotent by database constraint, opt in per task with
# acks_late=True and reject_on_worker_lost=True (see config.celery.IDEMPOTENT_TASK).
CELERY_TASK_ACKS_LATE = False
# Prefetch one message at a time, so a late-acked message is never held unacked
# by a busy worker while another worker idles (and is redelivered once if killed).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# No task may outlive the broker's visibility timeout, or Redis redelivers it to a
# second worker while the first is still running it.
CELERY_TASK_SOFT_TIME_LIMIT = 10 * 60
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
# How often the beat places members whose join-time index run was lost (referrals.services).
REFERRALS_TREE_INDEX_BEAT_SECONDS = env.float("REFERRALS_TREE_INDEX_BEAT_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE = {
    "payouts-run": {"task": "payouts.tasks.payout_batches_run_task", "schedule": crontab(minute="*/15")},
    "commissions-sweep": {"task": "commissions.tasks.commission_sweep_task", "schedule": 120.0},
    "commissions-release": {"task": "commissions.tasks.commission_release_due_task", "schedule": crontab(minute=5)},
    "clicks-flush": {"task": "referrals.tasks.clicks_flush_task", "schedule": 30.0},
    "referral-tree-index": {
        "task": "referrals.tasks.tree_index_pending_task",
        "schedule": REFERRALS_TREE_INDEX_BEAT_SECONDS,
    },
    "orders-cancel-unpaid": {
        "task": "shops.tasks.orders_cancel_expired_task",
        "schedule": 60.0,
    },
    "referral-tree-check-nightly": {
        "task": "referrals.tasks.tree_check_task",
        "schedule": crontab(hour=3, minute=17),
    },
    "ledger-check-nightly": {"task": "staff.tasks.ledger_check_task", "schedule": crontab(hour=3, minute=41)},
}

# --- The product --------------------------------------------------------------
CURRENCY = env.str("CURRENCY", default="CNY")

# Payments: the provider buyers pay with, and every provider the webhook endpoint accepts.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="sandbox")
PAYMENT_PROVIDERS = {"sandbox": "shops.payments.sandbox.SandboxProvider"}
PAYMENTS_SANDBOX_SECRET = env.str("PAYMENTS_SANDBOX_SECRET", default="sandbox-webhook-secret")
PAYMENTS_WEBHOOK_TOLERANCE = env.int("PAYMENTS_WEBHOOK_TOLERANCE", default=300)
# Unpaid orders are cancelled (and their stock returned) after this many minutes.
ORDER_PAYMENT_TIMEOUT_MINUTES = env.int("ORDER_PAYMENT_TIMEOUT_MINUTES", default=30)
ORDER_MAX_QUANTITY_PER_LINE = 99
# Shop logos: the largest upload accepted, in bytes (the dashboard also checks type and dimensions).
SHOP_LOGO_MAX_BYTES = env.int("SHOP_LOGO_MAX_BYTES", default=2 * 1024 * 1024)
# Commissions (SPEC §7).
COMMISSION_HOLD_DAYS = env.int("COMMISSION_HOLD_DAYS", default=7)
COMMISSION_SPLIT_BATCH = env.int("COMMISSION_SPLIT_BATCH", default=500)
# How long "a split run is on its way" holds before a payment sends another message anyway (see
# commissions.services.commission_split_requested).
COMMISSION_SPLIT_FLAG_SECONDS = env.int("COMMISSION_SPLIT_FLAG_SECONDS", default=30)
COMMISSION_SWEEP_AFTER_SECONDS = env.int("COMMISSION_SWEEP_AFTER_SECONDS", default=120)

# Payouts (SPEC §8).
WITHDRAWAL_MINIMUM = Decimal(env.str("WITHDRAWAL_MINIMUM", default="10.00"))
WITHDRAWAL_MAX_OPEN = env.int("WITHDRAWAL_MAX_OPEN", default=3)
# Requests up to this amount are approved automatically; 0 turns auto-approval off.
WITHDRAWAL_AUTO_APPROVE_MAX = Decimal(env.str("WITHDRAWAL_AUTO_APPROVE_MAX", default="0.00"))
PAYOUT_PROVIDER = env.str("PAYOUT_PROVIDER", default="sandbox")
PAYOUT_PROVIDERS = {
    "sandbox": "payouts.providers.sandbox.SandboxPayoutProvider",
    "manual": "payouts.providers.manual.ManualPayoutProvider",
}

# Share links and attribution (SPEC §5).
ATTRIBUTION_WINDOW_DAYS = env.int("ATTRIBUTION_WINDOW_DAYS", default=30)
ATTRIBUTION_MODEL = env.str("ATTRIBUTION_MODEL", default="last")  # "last" click wins, or "first"
if ATTRIBUTION_MODEL not in ("last", "first"):
    raise ImproperlyConfigured("ATTRIBUTION_MODEL must be 'last' or 'first'.")
ATTRIBUTION_COOKIE = "cps_ref"
# A visitor who came through a share link and signs up joins under that sharer (an invite link always wins).
REFERRALS_JOIN_VIA_SHARE_LINK = env.bool("REFERRALS_JOIN_VIA_SHARE_LINK", default=True)
# Where clicks are counted before the periodic flush: Redis when set (production), else process memory.
CLICKS_REDIS_URL = env.str("CLICKS_REDIS_URL", default=REDIS_URL)
# Behind a proxy that sets X-Forwarded-For, the visitor's address for unique counts is its first entry.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)

# Joins write the parent link at once; the nested-set fields of new members are filled by one batched pass
# (referrals.services.tree_index_pending). Inline: inside each join (the embedded default, where Celery runs
# eagerly); otherwise a coalesced task right after the join commits, plus the beat every few seconds.
REFERRALS_TREE_INDEX_INLINE = env.bool("REFERRALS_TREE_INDEX_INLINE", default=CELERY_TASK_ALWAYS_EAGER)
REFERRALS_TREE_INDEX_BATCH = env.int("REFERRALS_TREE_INDEX_BATCH", default=50_000)  # members per pass at most
REFERRALS_TREE_INDEX_FLAG_SECONDS = 60  # a lost "index run on its way" message delays placement at most this

# Invite code of the member that sponsor-less sign-ups join under; empty: they become roots.
REFERRALS_DEFAULT_SPONSOR_CODE = env.str("REFERRALS_DEFAULT_SPONSOR_CODE", default="")
# Demo logins printed by `manage.py demo`.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo-pass-2026")

# REST API v1 (issue #8): see config/api.py for the shared pieces and config/api_urls.py for the URLs.
# Requests per token, per session user and per anonymous IP address ("<n>/<second|minute|hour|day>").
API_THROTTLE_RATES = {
    "token": env.str("API_THROTTLE_TOKEN", default="600/minute"),
    "user": env.str("API_THROTTLE_USER", default="600/minute"),
    "anon": env.str("API_THROTTLE_ANON", default="120/minute"),
}
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes a request without credentials a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.api.throttling.TokenRateThrottle",
        "accounts.api.throttling.UserRateThrottle",
        "accounts.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CPS micro-shop API",
    "DESCRIPTION": "For integrators and mobile clients. Money is a string with two decimals; times are ISO 8601.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
