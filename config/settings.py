"""Settings, all from environment variables (SPEC §9).

With nothing set this is the embedded default: SQLite, Celery tasks run eagerly
in-process, local-memory cache, DEBUG on. Production sets DEBUG=0, SECRET_KEY,
DATABASE_URL (PostgreSQL), CELERY_BROKER_URL and REDIS_URL; README lists every setting.
"""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
import phonenumbers
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.beat import with_expiry
from config.mail import email_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEV_SECRET_KEY = "django-insecure-embedded-default-do-not-use-in-production"  # noqa: S105 - refused when DEBUG=0

DEBUG = env.bool("DEBUG", default=True)
# Production is DEBUG=0 as the environment sets it. The test runner turns settings.DEBUG off without being production,
# so what must happen only in production (config/checks.py refusing sandbox settings at start-up, also in a worker a
# test starts) or never there (`manage.py demo`) reads this instead.
IS_PRODUCTION = not DEBUG
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY (a long random string) when DEBUG=0.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The site's public origin: every absolute URL that leaves a request (payment webhooks and return addresses, reset
# links, share and invite links) is built from it, never from the Host header (core/site_url.py). Required when
# DEBUG=0; in development it is where `make run` serves.
SITE_URL = (env.str("SITE_URL", default="").strip() or ("http://127.0.0.1:8000" if DEBUG else "")).rstrip("/")

INSTALLED_APPS = [
    # Before django.contrib.staticfiles: its runserver command (which starts the embedded scheduler) wins.
    "config",
    # Before django.contrib.admin (its admin classes and static files): translated catalogue content (issue #23).
    "modeltranslation",
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
    "csp",
    "axes",
    # /readyz's checks and its page (config/health.py, issue #26)
    "health_check",
    # Thumbnails of product images, shop logos and materials (core/thumbnails.py); its table is the key-value store.
    "sorl.thumbnail",
    # Logging in with WeChat (issue #23): django-allauth's social accounts and its WeChat (weixin) provider only;
    # allauth's own account pages are not used (our /login/ and join pages are), see docs/accounts.md.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.weixin",
    "core",
    "accounts",
    "referrals",
    "shops",
    "commissions",
    "payouts",
    "members.webhooks",
    "members",
    "staff",
    "networks",
    "members.notifications",
    "demo",
]

MIDDLEWARE = [
    # Before all: every request gets its id (X-Request-ID), in its log lines and the tasks it sends (core.request_id).
    "core.request_id.RequestIdMiddleware",
    # Then: the views marked @machine_endpoint (payment and transfer notifications from the providers) are
    # served without the page middleware below (core.machine).
    "config.middleware.MachineEndpointMiddleware",
    # First: whatever error an /api/ request gets, from any layer below, is JSON in the API's one error shape.
    "config.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the session or a view runs (after the language is chosen, for the 400 page): NUL in the
    # path, the query string or the session cookie is a 400.
    "config.middleware.RejectNulCharactersMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Sets the device cookie the fraud rules compare (core.device), only on responses that gave a browser a new one.
    "config.middleware.DeviceCookieMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # django-allauth asks for it (it clears a half-finished WeChat login when the person walks away).
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a login refused because of a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# In development an unknown page gets the site's 404 page too (config.middleware); 1 shows Django's technical page.
DEBUG_TECHNICAL_404 = env.bool("DEBUG_TECHNICAL_404", default=False)
if DEBUG:
    MIDDLEWARE.append("config.middleware.SitePagesForNotFoundInDebugMiddleware")

if not DEBUG:
    # Production serves static files from the app (collectstatic first); in DEBUG runserver does.
    _after_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
    MIDDLEWARE.insert(_after_security, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
# Where Django admin and the back-office pages live, e.g. "staff-7f3a/": an unguessable path keeps scanners away.
ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"
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
                "members.notifications.context_processors.unread_notifications",
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
    is_postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    if is_postgresql and not env.bool("DATABASE_JIT", default=False):
        # PostgreSQL's JIT compiles a plan whose estimated cost is high, and a recursive team query's estimate is
        # (its row counts are guesses): 300 ms of compiling for 50 ms of work, on every team page at a peak.
        # Short transactional queries never gain from it. DATABASE_JIT=1 leaves the server's setting alone.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_URL = env.str("CACHE_URL", default="")
if CACHE_URL:
    CACHES = {"default": env.cache_url("CACHE_URL")}
elif REDIS_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cps"}}

# --- Users and auth -----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses any login attempt while its (identifier, IP address) is locked out (django-axes).
    "accounts.backends.LoginLockoutBackend",
    "accounts.backends.EmailOrPhoneBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "members:dashboard"
LOGOUT_REDIRECT_URL = "home"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# The SMTP server of django.core.mail.backends.smtp.EmailBackend (notifications send their emails through it).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Or all of the above from one URL (config/mail.py: smtp+tls://user:password@smtp.example.com:587, smtps://…:465,
# consolemail://), which then wins over them.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    try:
        globals().update(email_settings(EMAIL_URL))
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Staff", address) for address in env.list("ADMIN_EMAILS", default=[])]

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Translated content (django-modeltranslation, issue #23): product titles and descriptions, categories, sharing
# materials, plan and network names have one column per language (title_en, title_zh_hans), and `product.title`
# reads the active language's. English is the language of record: it is required, and an empty Chinese value
# falls back to it, so no page shows a blank name. See docs/languages.md.
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_LANGUAGES = ("en", "zh-hans")
MODELTRANSLATION_FALLBACK_LANGUAGES = {"default": ("en",)}
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The storefront's CSS and JavaScript: files, never inline (the Content Security Policy allows 'self' only).
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Private uploads (business payees' invoices, docs/tax.md): outside MEDIA_ROOT, which the proxy serves publicly at
# /media/; read only through permission-checked views, never by URL (payouts.storage refuses to make one).
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {"BACKEND": "payouts.storage.PrivateFileSystemStorage", "OPTIONS": {"location": PRIVATE_MEDIA_ROOT}},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Thumbnails (sorl-thumbnail, core/thumbnails.py): written to the default storage above (so an S3 storage later takes
# them too) under THUMBNAIL_PREFIX; what exists and its size is remembered in the database table of sorl's cached_db
# key-value store, read through the default cache, so a page does not ask the storage about every picture. WebP: about
# a third smaller than JPEG at the same quality, shown by every browser we serve (WeChat's included).
THUMBNAIL_STORAGE = "default"
THUMBNAIL_KVSTORE = "sorl.thumbnail.kvstores.cached_db_kvstore.KVStore"
THUMBNAIL_PREFIX = "cache/"
THUMBNAIL_FORMAT = env.str("THUMBNAIL_FORMAT", default="WEBP")
THUMBNAIL_QUALITY = env.int("THUMBNAIL_QUALITY", default=80)
# Never raise while a page renders: a missing or broken picture shows the placeholder (core/thumbnails.py).
THUMBNAIL_DEBUG = False
# How long a picture that could not be read is not tried again (seconds); the placeholder shows meanwhile.
THUMBNAIL_BROKEN_RETRY_SECONDS = env.int("THUMBNAIL_BROKEN_RETRY_SECONDS", default=300)

# --- Security (production) ----------------------------------------------------
if not DEBUG:
    # Only behind a proxy that overwrites X-Forwarded-Proto; otherwise clients could claim HTTPS.
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Every cookie we set is HTTPS-only in production: the session, CSRF and language cookies here, the attribution
# cookie (shops.attribution) through ATTRIBUTION_COOKIE_SECURE.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content Security Policy (django-csp): scripts and styles from our own origin only, nothing inline, no framing.
# Templates keep their JavaScript in static/js/ and their CSS in static/css/ (tests/security/test_csp.py checks).
# A payment provider whose hosted page is a form POST elsewhere must be added to form-action.
_csp_report_only = env.bool("CSP_REPORT_ONLY", default=False)
_csp = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *env.list("CSP_FORM_ACTION", default=[])],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
if _csp_report_only:  # try a policy change on real traffic first: violations are reported, nothing is blocked
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp
else:
    CONTENT_SECURITY_POLICY = _csp

# Brute-force protection on every password login (the login page, the admin login): django-axes. A login is
# locked after AXES_FAILURE_LIMIT failures for the same account (or typed identifier) from the same address, for
# AXES_COOLOFF_MINUTES; the person gets templates/accounts/locked_out.html (429) saying when to try again.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The account the identifier resolves to (email in any case or phone in any spelling), else the identifier
# normalised: trying the phone number after the email address counts against the same lockout.
AXES_USERNAME_CALLABLE = "accounts.lockout.login_identifier"
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# A locked-out person trying again does not push the end of the lockout further away: the page tells the truth.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# No log of successful logins (an address per login kept forever); failed attempts, with their address, are kept
# only for the cool-off (axes deletes older ones).
AXES_DISABLE_ACCESS_LOG = True
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2", "current_password", "new_password1"]
AXES_VERBOSE = False

# Rate limits ("<n>/<second|minute|hour|day>", "0" switches one off), counted in the cache per client address.
# Over the limit: a 429 page, and nothing changes. The redirect's counter is in the click counter's Redis script.
RATE_LIMIT_JOIN = env.str("RATE_LIMIT_JOIN", default="10/hour")
RATE_LIMIT_CHECKOUT = env.str("RATE_LIMIT_CHECKOUT", default="30/hour")
RATE_LIMIT_ORDER_LOOKUP = env.str("RATE_LIMIT_ORDER_LOOKUP", default="30/hour")
RATE_LIMIT_REDIRECT = env.str("RATE_LIMIT_REDIRECT", default="120/minute")
RATE_LIMIT_PASSWORD_RESET = env.str("RATE_LIMIT_PASSWORD_RESET", default="5/hour")
# Password spraying (one password tried on many accounts) passes AXES_FAILURE_LIMIT, which counts per account: at
# most this many distinct accounts (or unknown logins) may fail to log in from one address per window, then no
# login from there succeeds until the window ends (accounts/address_limit.py). Only failures count, and a login that
# succeeds takes its own account's failure back: a shared address (an office) where people log in is not held back.
RATE_LIMIT_LOGIN_ACCOUNTS = env.str("RATE_LIMIT_LOGIN_ACCOUNTS", default="20/hour")
# The open-shop page's address check as the member types (one request per pause in typing), counted per member.
RATE_LIMIT_SHOP_ADDRESS_CHECK = env.str("RATE_LIMIT_SHOP_ADDRESS_CHECK", default="60/minute")
# "Check again" on the identity page asks the (paid) verification provider: counted per person (issue #24).
RATE_LIMIT_IDENTITY_CHECK = env.str("RATE_LIMIT_IDENTITY_CHECK", default="5/hour")
# "Download my data" builds a ZIP of everything the member has (issue #24): counted per member.
RATE_LIMIT_DATA_EXPORT = env.str("RATE_LIMIT_DATA_EXPORT", default="5/day")
for _name in (
    "RATE_LIMIT_JOIN",
    "RATE_LIMIT_CHECKOUT",
    "RATE_LIMIT_ORDER_LOOKUP",
    "RATE_LIMIT_REDIRECT",
    "RATE_LIMIT_PASSWORD_RESET",
    "RATE_LIMIT_LOGIN_ACCOUNTS",
    "RATE_LIMIT_SHOP_ADDRESS_CHECK",
    "RATE_LIMIT_IDENTITY_CHECK",
    "RATE_LIMIT_DATA_EXPORT",
):
    if not re.fullmatch(r"\s*(0|\d+\s*/\s*(s|second|m|minute|h|hour|d|day)s?)\s*", globals()[_name], re.IGNORECASE):
        raise ImproperlyConfigured(f"{_name} must look like '10/hour' (or '0' for no limit).")

# Every handler redacts passwords, tokens and other secrets and masks emails and phone numbers (core/logging.py).
# Django's own loggers are configured here too, so none of them keeps a default handler without the filter.
# LOG_FORMAT: "json" (one JSON object per line: time, level, logger, message, request_id, the exception; the default
# in production, for a log collector) or "text" (the message alone; the default with DEBUG on).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "core.logging.RedactingFilter"},
        "request_id": {"()": "core.request_id.RequestIdFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC, whatever TIME_ZONE is
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact", "request_id"],
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "django.server",
            "filters": ["redact", "request_id"],
        },
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR", "filters": ["redact"]},
        # Django's server errors mail staff in production only, as Django's default logging does.
        "mail_admins_production": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["redact", "require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["mail_admins_production"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "referrals.tree": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
        # One line per task run is noise in the embedded default, where tasks run in-process.
        "celery.app.trace": {"level": env.str("CELERY_TRACE_LOG_LEVEL", default="WARNING")},
    },
}

# --- Celery -------------------------------------------------------------------
# No broker configured: the embedded default runs every task eagerly in-process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Who runs CELERY_BEAT_SCHEDULE: with a broker, `celery beat`; in the embedded default, the development server
# itself (`manage.py runserver` starts a scheduler thread that runs each due task in-process: config/scheduler.py).
EMBEDDED_SCHEDULER = env.bool("EMBEDDED_SCHEDULER", default=not CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# JSON logs: the worker and beat keep settings.LOGGING's handlers (JSON, with the request id) instead of installing
# their own text ones.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Early acks by default: a task that is not idempotent must not run twice. Money
# tasks, which are idempotent by database constraint, opt in per task with
# acks_late=True and reject_on_worker_lost=True (see core.task_helpers.IDEMPOTENT_TASK).
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
    "commissions-policy-options": {"task": "commissions.tasks.policy_options_sync_task", "schedule": 60.0},
    "commissions-release": {"task": "commissions.tasks.commission_release_due_task", "schedule": crontab(minute=5)},
    # External lines the networks marked for the ledger whose message was lost (commissions.services.external).
    "commissions-external-lines": {"task": "commissions.tasks.external_lines_apply_task", "schedule": 60.0},
    "clicks-flush": {"task": "shops.tasks.clicks_flush_task", "schedule": 30.0},
    "referral-tree-index": {
        "task": "referrals.tasks.tree_index_pending_task",
        "schedule": REFERRALS_TREE_INDEX_BEAT_SECONDS,
    },
    # Payment notices recorded but not applied: a lost message, a crash between the record and the apply.
    "payment-notices-apply": {"task": "shops.tasks.payment_notices_apply_task", "schedule": 30.0},
    # Payments still pending minutes after they were opened: ask the provider (its notification may never come).
    "payments-sync-stale": {"task": "shops.tasks.payments_sync_stale_task", "schedule": 60.0},
    "orders-cancel-unpaid": {
        "task": "shops.tasks.orders_cancel_expired_task",
        "schedule": 60.0,
    },
    "referral-tree-check-nightly": {
        "task": "referrals.tasks.tree_check_task",
        "schedule": crontab(hour=3, minute=17),
    },
    "ledger-check-nightly": {"task": "staff.tasks.ledger_check_task", "schedule": crontab(hour=3, minute=41)},
    # The member fraud rules over every member (docs/risk.md); a run not started within 6 hours is dropped (the next
    # night's run covers it).
    "risk-rescore-nightly": {
        "task": "commissions.tasks.risk_rescore_members_task",
        "schedule": crontab(hour=2, minute=23),
        "options": {"expires": 6 * 60 * 60},
    },
    # Transfers waiting at a payout rail (the payee's confirmation, a notification that never came, an expiry).
    "payout-transfers-sync": {"task": "payouts.tasks.payout_transfers_sync_task", "schedule": crontab(minute="*/10")},
    # Yesterday's bills of every enabled rail against our payments, refunds and transfers (WeChat Pay makes the bills
    # of a day by 10:00 the next day, China time; docs/payments.md, "Reconciliation"). Nothing to do without a rail.
    "reconciliation-daily": {"task": "staff.tasks.reconciliation_run_task", "schedule": crontab(hour=10, minute=37)},
    # Identities of closed accounts whose retention period ended (RECORDS_RETENTION_YEARS): name and number erased.
    "identities-erase-due": {
        "task": "accounts.tasks.identities_erase_due_task",
        "schedule": crontab(hour=4, minute=23),
        "options": {"expires": 6 * 60 * 60},
    },
    # Then the payout accounts saved with those people's withdrawals are masked (name and numbers as the pages show).
    "withdrawal-accounts-erase-due": {
        "task": "payouts.tasks.withdrawal_accounts_erase_due_task",
        "schedule": crontab(hour=4, minute=43),
        "options": {"expires": 6 * 60 * 60},
    },
}

# --- The product --------------------------------------------------------------
# A member's rights and exit (issue #24, docs/privacy.md). After an account closes, the records the law requires (the
# commission ledger, withdrawals, tax withheld, and the identity they were reported under) are kept this many years,
# then the identity's name and number are erased (accounts.tasks.identities_erase_due_task). 3: 电子商务法 art. 31
# (transaction records, at least three years from the transaction's completion); raise it where a longer ground
# applies (docs/privacy.md lists the ones we know of).
RECORDS_RETENTION_YEARS = env.int("RECORDS_RETENTION_YEARS", default=3)
# A shop that stops shows a closing notice this many days before it closes (电子商务法 art. 16: thirty days ahead).
SHOP_CLOSING_NOTICE_DAYS = env.int("SHOP_CLOSING_NOTICE_DAYS", default=30)
CURRENCY = env.str("CURRENCY", default="CNY")
# The region a phone number typed without a country code belongs to (ISO 3166 code, e.g. CN, HK, US): every phone
# is stored in E.164 form ("+8613800138000") whatever its spelling (core/phones.py).
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="CN").strip().upper()
if PHONE_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ImproperlyConfigured(f"PHONE_DEFAULT_REGION={PHONE_DEFAULT_REGION!r} is not a region code such as CN or US")

# Payments: the provider buyers pay with, and every provider the webhook endpoint accepts.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="sandbox")
PAYMENT_PROVIDERS = {
    "sandbox": "shops.payments.sandbox.SandboxProvider",
    "wechatpay": "shops.payments.wechatpay.WeChatPayProvider",
    "alipay": "shops.payments.alipay.AlipayProvider",
}
DEV_PAYMENTS_SANDBOX_SECRET = "sandbox-webhook-secret"  # noqa: S105 - public; refused when DEBUG=0 (config/checks.py)
PAYMENTS_SANDBOX_SECRET = env.str("PAYMENTS_SANDBOX_SECRET", default=DEV_PAYMENTS_SANDBOX_SECRET)
PAYMENTS_WEBHOOK_TOLERANCE = env.int("PAYMENTS_WEBHOOK_TOLERANCE", default=300)


def env_secret(name: str) -> str:
    """A key or secret from the environment variable `name`, or from the file that `name`_FILE names (a mounted
    secret; PEM keys are easier kept as files). Never from the database. Read once at start: a rotation restarts."""
    path = env.str(f"{name}_FILE", default="").strip()
    if not path:
        return env.str(name, default="").strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {error.strerror}") from None


# The real rails (docs/payments.md). A rail is enabled when it is PAYMENT_PROVIDER or listed in PAYMENT_RAILS (a
# deployment may offer both); `check --deploy` refuses an enabled rail whose credentials are missing. The gateway
# URLs are settings so that the SDKs run unchanged against the local fakes (shops/payments/fakes).
PAYMENT_RAILS = env.list("PAYMENT_RAILS", default=[])
PAYMENTS_PROVIDER_TIMEOUT = env.float("PAYMENTS_PROVIDER_TIMEOUT", default=10.0)
# WeChat Pay API v3: merchant number, the app (official account) id, the merchant API certificate's serial number and
# private key (apiclient_key.pem), the APIv3 key; and the platform's public key and its id (微信支付公钥,
# PUB_KEY_ID_…), or, for a merchant still on platform certificates, none of those two: the certificates are then
# downloaded and kept in WECHATPAY_CERT_DIR.
WECHATPAY_GATEWAY_URL = env.str("WECHATPAY_GATEWAY_URL", default="https://api.mch.weixin.qq.com").rstrip("/")
WECHATPAY_MCHID = env.str("WECHATPAY_MCHID", default="")
WECHATPAY_APPID = env.str("WECHATPAY_APPID", default="")
WECHATPAY_MERCHANT_SERIAL_NO = env.str("WECHATPAY_MERCHANT_SERIAL_NO", default="")
WECHATPAY_MERCHANT_PRIVATE_KEY = env_secret("WECHATPAY_MERCHANT_PRIVATE_KEY")
WECHATPAY_APIV3_KEY = env_secret("WECHATPAY_APIV3_KEY")
WECHATPAY_PLATFORM_PUBLIC_KEY = env_secret("WECHATPAY_PLATFORM_PUBLIC_KEY")
WECHATPAY_PLATFORM_PUBLIC_KEY_ID = env.str("WECHATPAY_PLATFORM_PUBLIC_KEY_ID", default="")
WECHATPAY_CERT_DIR = env.str("WECHATPAY_CERT_DIR", default="")
# Alipay open platform: the application's id and private key (RSA2), and Alipay's public key (支付宝公钥).
ALIPAY_GATEWAY_URL = env.str("ALIPAY_GATEWAY_URL", default="https://openapi.alipay.com/gateway.do")
ALIPAY_APP_ID = env.str("ALIPAY_APP_ID", default="")
ALIPAY_APP_PRIVATE_KEY = env_secret("ALIPAY_APP_PRIVATE_KEY")
ALIPAY_PUBLIC_KEY = env_secret("ALIPAY_PUBLIC_KEY")
# WeChat's silent web OAuth (snsapi_base), for the buyer's openid that WeChat Pay JSAPI needs inside WeChat's browser
# (shops/payments/wechat_oauth.py): the official account's AppID (the one WeChat Pay uses) and AppSecret. Without
# the secret, buyers inside WeChat are not offered WeChat Pay. The URLs are the local fake's in tests.
WECHAT_OAUTH_APPID = env.str("WECHAT_OAUTH_APPID", default="") or WECHATPAY_APPID
WECHAT_OAUTH_SECRET = env_secret("WECHAT_OAUTH_SECRET")
WECHAT_OAUTH_URL = env.str("WECHAT_OAUTH_URL", default="https://open.weixin.qq.com").rstrip("/")
WECHAT_API_URL = env.str("WECHAT_API_URL", default="https://api.weixin.qq.com").rstrip("/")
# The buyer's pages ask the provider how a pending payment stands (a notification that is late or lost) at most
# once per this many seconds per payment.
PAYMENTS_QUERY_INTERVAL = env.int("PAYMENTS_QUERY_INTERVAL", default=10)
# The beat asks the provider about a payment still pending this many seconds after it was opened, then again at
# most every PAYMENTS_SYNC_STALE_INTERVAL seconds until the order is paid or cancelled (at most
# PAYMENTS_SYNC_STALE_BATCH payments a run).
PAYMENTS_SYNC_STALE_AFTER = env.int("PAYMENTS_SYNC_STALE_AFTER", default=120)
PAYMENTS_SYNC_STALE_INTERVAL = env.int("PAYMENTS_SYNC_STALE_INTERVAL", default=300)
PAYMENTS_SYNC_STALE_BATCH = env.int("PAYMENTS_SYNC_STALE_BATCH", default=200)
# Payment notices applied per transaction by a worker (shops.services.payment_notices_apply), and how long the
# "a run is asked for" flag lives if its message is lost (the beat applies what waits in any case).
PAYMENT_NOTICES_BATCH = env.int("PAYMENT_NOTICES_BATCH", default=500)
PAYMENT_NOTICES_FLAG_SECONDS = env.int("PAYMENT_NOTICES_FLAG_SECONDS", default=30)
# A run asked for by a notice waits this long before it claims, so a burst's notices share a batch (and one message).
PAYMENT_NOTICES_GATHER_SECONDS = env.float("PAYMENT_NOTICES_GATHER_SECONDS", default=0.05)
# Unpaid orders are cancelled (and their stock returned) after this many minutes.
ORDER_PAYMENT_TIMEOUT_MINUTES = env.int("ORDER_PAYMENT_TIMEOUT_MINUTES", default=30)
# How many units checkouts may hold in stock before they are paid (0: no limit). Stock is reserved at checkout and held
# until payment or the timeout, so without these one address could hold a shop's whole stock with unpaid orders
# (shops.services.order_place checks them under a lock with the reservation; see the README).
ORDER_MAX_QUANTITY_PER_LINE = env.int("ORDER_MAX_QUANTITY_PER_LINE", default=99)
ORDER_MAX_UNITS_PER_ORDER = env.int("ORDER_MAX_UNITS_PER_ORDER", default=100)
# Units in unpaid orders placed within the payment timeout, with one phone number or email address ...
ORDER_UNPAID_UNITS_PER_BUYER = env.int("ORDER_UNPAID_UNITS_PER_BUYER", default=100)
# ... and from one client address (core/client_ip.py; generous, as mobile carriers put many buyers behind one).
ORDER_UNPAID_UNITS_PER_ADDRESS = env.int("ORDER_UNPAID_UNITS_PER_ADDRESS", default=200)
# Shop logos: the largest upload accepted, in bytes (the dashboard also checks type and dimensions).
SHOP_LOGO_MAX_BYTES = env.int("SHOP_LOGO_MAX_BYTES", default=2 * 1024 * 1024)
SHOP_LOGO_MIN_SIDE = 64
SHOP_LOGO_MAX_SIDE = 4096
# Every other uploaded image (product images): PNG, JPEG or WebP by content, at most this many bytes, and
# IMAGE_UPLOAD_MIN_SIDE..IMAGE_UPLOAD_MAX_SIDE pixels a side (core/images.py).
IMAGE_UPLOAD_MAX_BYTES = env.int("IMAGE_UPLOAD_MAX_BYTES", default=5 * 1024 * 1024)
IMAGE_UPLOAD_MIN_SIDE = 64
IMAGE_UPLOAD_MAX_SIDE = env.int("IMAGE_UPLOAD_MAX_SIDE", default=4096)
# Commissions (SPEC §7).
# The jurisdiction preset chosen at set-up (commissions/presets.py, docs/compliance.md#jurisdiction-presets): how many
# levels a compliance policy may ever pay here. china_strict (1, the sharer only), china_two_levels (2, with a warning;
# the default, so the demo's two-level plan runs) or international (3, the code's ceiling). Staff cannot change it:
# every policy version records the preset it was published under, and one that breaks it is refused.
COMPLIANCE_PRESET = env.str("COMPLIANCE_PRESET", default="china_two_levels")
if COMPLIANCE_PRESET not in ("china_strict", "china_two_levels", "international"):
    raise ImproperlyConfigured(
        f"COMPLIANCE_PRESET must be china_strict, china_two_levels or international, not {COMPLIANCE_PRESET!r}."
    )
COMMISSION_HOLD_DAYS = env.int("COMMISSION_HOLD_DAYS", default=7)
COMMISSION_SPLIT_BATCH = env.int("COMMISSION_SPLIT_BATCH", default=500)
# Days between announcing a change of the commission rules (a plan activated, a policy published) and the change
# taking effect. 《电子商务法》 art. 34: a platform publishes a change of its trading rules at least 7 days before it
# takes effect; 《网络交易平台收费行为合规指南》 (SAMR, 31 July 2025) asks the same of fee rules (published on the home
# page, changed only after public consultation as the law requires, every earlier version kept 3 years). 7 is the
# legal minimum: set it higher, never lower. docs/compliance.md.
RULES_CHANGE_NOTICE_DAYS = env.int("RULES_CHANGE_NOTICE_DAYS", default=7)
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
# Income tax withheld at payout (docs/tax.md): the rule used while staff have activated no WithholdingRule in admin.
# cumulative_2025 (STA 2025 No. 16, the default), per_payment_2018 (STA 2018 No. 61) or none.
TAX_WITHHOLDING_METHOD = env.str("TAX_WITHHOLDING_METHOD", default="cumulative_2025")
# Four eyes on money and rules (docs/compliance.md): a withdrawal approval or a balance adjustment above this amount
# needs a second staff member; plan activations, policy versions and shop owner changes always do. Below 0: four
# eyes on money off (a one-person operation; rules still need two).
FOUR_EYES_THRESHOLD = Decimal(env.str("FOUR_EYES_THRESHOLD", default="5000.00"))
# A finance user who adjusted a member's balance (entered or approved an adjustment, or asked for one) in the last
# this many days may not approve that member's withdrawals; a staff member's own adjustments of one member in this
# window also add up towards FOUR_EYES_THRESHOLD (docs/compliance.md).
ADJUSTMENT_CONFLICT_DAYS = env.int("ADJUSTMENT_CONFLICT_DAYS", default=30)
# The platform's company (docs/tax.md): its registered name (发票抬头) and unified social credit code (纳税人识别号).
# Business payees' invoices must name it as the buyer (shown to them); members' annual income statements print it as
# the withholding agent (扣缴义务人). Empty: the pages tell members to ask support, the statement leaves the line out.
PLATFORM_INVOICE_TITLE = env.str("PLATFORM_INVOICE_TITLE", default="")
PLATFORM_TAX_ID = env.str("PLATFORM_TAX_ID", default="")
# The largest invoice file a business payee may upload (PDF, OFD, JPEG or PNG).
INVOICE_FILE_MAX_BYTES = env.int("INVOICE_FILE_MAX_BYTES", default=10 * 1024 * 1024)
PAYOUT_PROVIDERS = {
    "sandbox": "payouts.providers.sandbox.SandboxPayoutProvider",
    "manual": "payouts.providers.manual.ManualPayoutProvider",
    "wechat_transfer": "payouts.providers.wechat_transfer.WeChatTransferProvider",
    "alipay_transfer": "payouts.providers.alipay_transfer.AlipayTransferProvider",
    "rails": "payouts.providers.rails.RailsPayoutProvider",
}
# The payout rails (docs/payments.md, "Paying members"). PAYOUT_PROVIDER=rails sends each withdrawal through its
# member's rail when that rail is listed here (a WeChat payee to wechat_transfer, an Alipay account to
# alipay_transfer); the rest (bank cards, rails not listed) wait for finance, as the manual provider's do. A rail is
# enabled when it is PAYOUT_PROVIDER or listed here; `check --deploy` refuses an enabled rail without credentials.
PAYOUT_RAILS = env.list("PAYOUT_RAILS", default=[])
# WeChat Pay 商家转账 (the merchant credentials are the WECHATPAY_* settings above): the transfer scene opened in the
# merchant platform (1005 佣金报酬: commission to promoters), the report fields that scene requires (info_type=content,
# separated by ";"), what the payee reads on the receipt page, and the remark (at most 32 characters).
WECHATPAY_TRANSFER_SCENE_ID = env.str("WECHATPAY_TRANSFER_SCENE_ID", default="1005")
WECHATPAY_TRANSFER_REPORT_INFOS = env.str(
    "WECHATPAY_TRANSFER_REPORT_INFOS", default="岗位类型=推广员;报酬说明=推广佣金提现"
)
WECHATPAY_TRANSFER_RECV_PERCEPTION = env.str("WECHATPAY_TRANSFER_RECV_PERCEPTION", default="劳务报酬")
WECHATPAY_TRANSFER_REMARK = env.str("WECHATPAY_TRANSFER_REMARK", default="佣金提现")
# WeChat Pay takes 100 transfer requests a second per merchant (more are refused, FREQUENCY_LIMITED); a batch sends
# at most this many a second (0: no limit, for the local fake), from this many threads.
WECHATPAY_TRANSFER_MAX_PER_SECOND = env.float("WECHATPAY_TRANSFER_MAX_PER_SECOND", default=100.0)
WECHATPAY_TRANSFER_THREADS = env.int("WECHATPAY_TRANSFER_THREADS", default=8)
# An unconfirmed transfer bill is closed by WeChat Pay 24 hours after it was made; the periodic sync cancels one
# still waiting this long after that (WeChat Pay's own closing can lag), so the money returns to the member.
PAYOUT_TRANSFER_CONFIRM_HOURS = env.float("PAYOUT_TRANSFER_CONFIRM_HOURS", default=24.0)
PAYOUT_TRANSFER_CANCEL_GRACE_MINUTES = env.float("PAYOUT_TRANSFER_CANCEL_GRACE_MINUTES", default=30.0)
# Alipay 单笔转账 (alipay.fund.trans.uni.transfer). Alipay takes fund transfers only from an application in the
# certificate mode (公钥证书): its id and private key (by default the payment application's) and the three
# certificates downloaded from the open platform: the application's public key certificate
# (appCertPublicKey_<app id>.crt), Alipay's (alipayCertPublicKey_RSA2.crt) and Alipay's root (alipayRootCert.crt).
ALIPAY_TRANSFER_APP_ID = env.str("ALIPAY_TRANSFER_APP_ID", default="") or ALIPAY_APP_ID
ALIPAY_TRANSFER_APP_PRIVATE_KEY = env_secret("ALIPAY_TRANSFER_APP_PRIVATE_KEY") or ALIPAY_APP_PRIVATE_KEY
ALIPAY_APP_CERT = env_secret("ALIPAY_APP_CERT")
ALIPAY_PUBLIC_CERT = env_secret("ALIPAY_PUBLIC_CERT")
ALIPAY_ROOT_CERT = env_secret("ALIPAY_ROOT_CERT")
ALIPAY_TRANSFER_ORDER_TITLE = env.str("ALIPAY_TRANSFER_ORDER_TITLE", default="佣金提现")
# With DEBUG=0 the sandbox payment and payout providers and the sandbox affiliate network are refused (`check
# --deploy` errors, and gunicorn, Celery worker and beat do not start: config/checks.py); a staging deployment where
# no real money moves may allow them. The public PAYMENTS_SANDBOX_SECRET is refused even then.
ALLOW_SANDBOX_PROVIDERS = env.bool("ALLOW_SANDBOX_PROVIDERS", default=False)

# Share links and attribution (SPEC §5).
ATTRIBUTION_WINDOW_DAYS = env.int("ATTRIBUTION_WINDOW_DAYS", default=30)
ATTRIBUTION_MODEL = env.str("ATTRIBUTION_MODEL", default="last")  # "last" click wins, or "first"
if ATTRIBUTION_MODEL not in ("last", "first"):
    raise ImproperlyConfigured("ATTRIBUTION_MODEL must be 'last' or 'first'.")
ATTRIBUTION_COOKIE = "cps_ref"
# The device cookie of the fraud rules (core.device, docs/risk.md): a random token, stored only hashed.
DEVICE_COOKIE = "cps_dev"
# A visitor who came through a share link and signs up joins under that sharer (an invite link always wins).
REFERRALS_JOIN_VIA_SHARE_LINK = env.bool("REFERRALS_JOIN_VIA_SHARE_LINK", default=True)
# Where clicks are counted before the periodic flush: Redis when set (production), else process memory.
CLICKS_REDIS_URL = env.str("CLICKS_REDIS_URL", default=REDIS_URL)
# Behind proxies that append to X-Forwarded-For, the client's address (rate limits, lockouts, unique visitors) is
# the entry our nearest proxies wrote: the TRUSTED_PROXY_COUNT-th from the right (core/client_ip.py).
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
# The attribution cookie is HTTPS-only in production, like every other cookie.
ATTRIBUTION_COOKIE_SECURE = env.bool("ATTRIBUTION_COOKIE_SECURE", default=not DEBUG)

# Share posters (members/posters.py, docs/sharing.md). Chinese text needs a CJK font: POSTER_FONT_PATH if set, else
# the first of these that exists (Debian: apt-get install fonts-wqy-zenhei, or fonts-noto-cjk). None found: posters
# are drawn with Pillow's Latin font and Chinese characters left out (a warning is logged).
POSTER_FONT_PATH = env.str("POSTER_FONT_PATH", default="")
POSTER_FONT_SEARCH_PATHS = [
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
]
# A drawn poster is kept in the cache this long (its key is a hash of everything it shows).
POSTER_CACHE_SECONDS = env.int("POSTER_CACHE_SECONDS", default=7 * 24 * 3600)
# WeChat JS-SDK share card (shops/wechat_share.py): when a ticket provider is set, shop and product pages opened in
# WeChat's browser carry wx.config with a signature, and set the card's title, picture and text. "wechat": the
# jsapi_ticket from WeChat's API with the official account's AppID and AppSecret (WECHAT_JSSDK_APPID and
# WECHAT_JSSDK_SECRET, defaulting to the OAuth ones); or the dotted path of a provider class (tests use a fake);
# empty: off (the Open Graph tags are still there).
WECHAT_JSSDK_TICKET_PROVIDER = env.str("WECHAT_JSSDK_TICKET_PROVIDER", default="")
WECHAT_JSSDK_APPID = env.str("WECHAT_JSSDK_APPID", default="") or WECHAT_OAUTH_APPID
WECHAT_JSSDK_SECRET = env_secret("WECHAT_JSSDK_SECRET") or WECHAT_OAUTH_SECRET
WECHAT_JSSDK_SCRIPT_URL = env.str("WECHAT_JSSDK_SCRIPT_URL", default="https://res.wx.qq.com/open/js/jweixin-1.6.0.js")

# Joins write the parent link at once; the nested-set fields of new members are filled by one batched pass
# (referrals.services.tree_index_pending). Inline: inside each join (the embedded default, where Celery runs
# eagerly); otherwise a coalesced task right after the join commits, plus the beat every few seconds.
REFERRALS_TREE_INDEX_INLINE = env.bool("REFERRALS_TREE_INDEX_INLINE", default=CELERY_TASK_ALWAYS_EAGER)
REFERRALS_TREE_INDEX_BATCH = env.int("REFERRALS_TREE_INDEX_BATCH", default=50_000)  # members per pass at most
REFERRALS_TREE_INDEX_FLAG_SECONDS = 60  # a lost "index run on its way" message delays placement at most this
# After a pass that took a second or more (a large tree), the next one starts no sooner than this many times its
# duration later: at a peak the passes then share the CPUs with the joins half the time instead of all the time,
# and each places twice as many members for the same work. Team figures do not wait (they read parent links).
REFERRALS_TREE_INDEX_REST = env.float("REFERRALS_TREE_INDEX_REST", default=1.0)

# Invite code of the member that sponsor-less sign-ups join under; empty: they become roots.
REFERRALS_DEFAULT_SPONSOR_CODE = env.str("REFERRALS_DEFAULT_SPONSOR_CODE", default="")
# Demo logins printed by `manage.py demo`, which refuses to run in production (IS_PRODUCTION).
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo-pass-2026")

# REST API v1 (issue #8): see core/api.py for the shared pieces and config/api_urls.py for the URLs.
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
    # DRF's three, with a JSON parser that refuses bodies nested too deeply (a 400, not a RecursionError).
    "DEFAULT_PARSER_CLASSES": [
        "core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
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
    # Two choice sets share the field name "source" (a commission entry's: shop or network; a member order's: shop
    # or link): each named here, the entries' keeping the name it had.
    "ENUM_NAME_OVERRIDES": {
        "SourceEnum": ["shop", "network"],
        "MemberOrderSourceEnum": "members.api.orders.SOURCE_CHOICES",
    },
}

# External affiliate networks (issue #12, networks/): the incremental order sync reads the report in windows of
# this many minutes, starting a little before where it stopped (networks index late changes late), at most this
# many windows per run; a network synced for the first time starts this many days back.
NETWORK_SYNC_WINDOW_MINUTES = env.int("NETWORK_SYNC_WINDOW_MINUTES", default=20)
NETWORK_SYNC_OVERLAP_MINUTES = env.int("NETWORK_SYNC_OVERLAP_MINUTES", default=5)
NETWORK_SYNC_MAX_WINDOWS = env.int("NETWORK_SYNC_MAX_WINDOWS", default=72)
NETWORK_SYNC_FIRST_DAYS = env.int("NETWORK_SYNC_FIRST_DAYS", default=1)
NETWORK_SYNC_INTERVAL_SECONDS = env.int("NETWORK_SYNC_INTERVAL_SECONDS", default=300)
# Order-report files staff upload (networks/imports.py), read by a Celery task: the largest file, what an XLSX may
# unpack to (checked from the zip's directory before anything is decompressed), and the rows and cells read.
NETWORK_IMPORT_MAX_BYTES = env.int("NETWORK_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
NETWORK_IMPORT_MAX_UNCOMPRESSED_BYTES = env.int("NETWORK_IMPORT_MAX_UNCOMPRESSED_BYTES", default=200 * 1024 * 1024)
NETWORK_IMPORT_MAX_ROWS = env.int("NETWORK_IMPORT_MAX_ROWS", default=100_000)
NETWORK_IMPORT_MAX_CELLS = env.int("NETWORK_IMPORT_MAX_CELLS", default=3_000_000)
CELERY_BEAT_SCHEDULE["networks-sync"] = {
    "task": "networks.tasks.networks_sync_task",
    "schedule": float(NETWORK_SYNC_INTERVAL_SECONDS),
}

# Outbound webhooks for integrators (issue #22, webhooks/, docs/webhooks.md). Retries after a failed attempt wait
# these many seconds (1 min, 5 min, 30 min, 2 h, 12 h), then the delivery is failed; an endpoint failing for
# WEBHOOKS_DISABLE_AFTER_HOURS with no success is switched off and its owner told. Endpoints must be https and
# resolve to public addresses only (SSRF) unless WEBHOOKS_ALLOW_PRIVATE_URLS, which is on only in development.
WEBHOOKS_RETRY_SCHEDULE = [
    int(s) for s in env.list("WEBHOOKS_RETRY_SCHEDULE", default=["60", "300", "1800", "7200", "43200"])
]
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=3.0)
WEBHOOKS_READ_TIMEOUT = env.float("WEBHOOKS_READ_TIMEOUT", default=10.0)
WEBHOOKS_DISABLE_AFTER_HOURS = env.int("WEBHOOKS_DISABLE_AFTER_HOURS", default=72)
WEBHOOKS_SECRET_ROTATION_HOURS = env.int("WEBHOOKS_SECRET_ROTATION_HOURS", default=24)
WEBHOOKS_MAX_ENDPOINTS = env.int("WEBHOOKS_MAX_ENDPOINTS", default=5)
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=not IS_PRODUCTION)
WEBHOOKS_PROXY_URL = env.str("WEBHOOKS_PROXY_URL", default="")
# How far back the sweep looks for facts whose announcement was lost (webhooks.services.webhook_events_sweep).
WEBHOOKS_SWEEP_HOURS = env.int("WEBHOOKS_SWEEP_HOURS", default=6)
CELERY_BEAT_SCHEDULE["webhooks-deliveries-due"] = {
    "task": "members.webhooks.tasks.webhook_deliveries_due_task",
    "schedule": 30.0,
}
CELERY_BEAT_SCHEDULE["webhooks-events-sweep"] = {
    "task": "members.webhooks.tasks.webhook_events_sweep_task",
    "schedule": 300.0,
}

# --- SMS (core/sms.py) and notifications (notifications/) -----------------------
# The SMS port: the console backend logs messages (number masked); Tencent Cloud SMS in production (core/sms.py).
SMS_BACKEND = env.str("SMS_BACKEND", default="core.sms.ConsoleSmsBackend")
SMS_TIMEOUT = env.int("SMS_TIMEOUT", default=10)
SMS_TENCENT_SECRET_ID = env.str("SMS_TENCENT_SECRET_ID", default="")
SMS_TENCENT_SECRET_KEY = env_secret("SMS_TENCENT_SECRET_KEY")
SMS_TENCENT_SDK_APP_ID = env.str("SMS_TENCENT_SDK_APP_ID", default="")
SMS_TENCENT_SIGN_NAME = env.str("SMS_TENCENT_SIGN_NAME", default="")
SMS_TENCENT_REGION = env.str("SMS_TENCENT_REGION", default="ap-guangzhou")
SMS_TENCENT_ENDPOINT = env.str("SMS_TENCENT_ENDPOINT", default="sms.tencentcloudapi.com")
# Our template names → the ids of the templates approved in the provider's console, e.g. SMS_TEMPLATES=otp=123456,...
SMS_TEMPLATES = env.dict("SMS_TEMPLATES", default={})
# The buyer's one-time code (shops: orders by phone): codes per phone and per address, its life and its attempts.
RATE_LIMIT_PHONE_CODE = env.str("RATE_LIMIT_PHONE_CODE", default="5/hour")
RATE_LIMIT_PHONE_CODE_IP = env.str("RATE_LIMIT_PHONE_CODE_IP", default="20/hour")
PHONE_CODE_SECONDS = env.int("PHONE_CODE_SECONDS", default=600)
PHONE_CODE_ATTEMPTS = env.int("PHONE_CODE_ATTEMPTS", default=5)
# Logging in and signing up with a code by SMS (accounts/login_codes.py): codes per phone and per address, the
# code's life (5 minutes) and its attempts.
RATE_LIMIT_LOGIN_CODE = env.str("RATE_LIMIT_LOGIN_CODE", default="5/hour")
RATE_LIMIT_LOGIN_CODE_IP = env.str("RATE_LIMIT_LOGIN_CODE_IP", default="20/hour")
LOGIN_CODE_SECONDS = env.int("LOGIN_CODE_SECONDS", default=300)
LOGIN_CODE_ATTEMPTS = env.int("LOGIN_CODE_ATTEMPTS", default=5)
# Adding or removing a way to log in (a phone, WeChat) needs a login in the same session within this many seconds.
LOGIN_RECENT_SECONDS = env.int("LOGIN_RECENT_SECONDS", default=900)

# --- Logging in with WeChat (django-allauth's weixin provider; accounts/wechat_login.py, docs/accounts.md) --------
# Two WeChat apps can sign people in: the Open Platform website app (网站应用: the QR code on a desktop browser,
# open.weixin.qq.com/connect/qrconnect, scope snsapi_login) and the official account (公众号: inside WeChat's own
# browser, /connect/oauth2/authorize with snsapi_userinfo). Bind both to one Open Platform account so WeChat gives
# the same unionid for a person in both, which is what an account is bound to. Without an AppID and secret for
# either, "Log in with WeChat" is not shown. The URLs are WeChat's; tests and `make run WECHAT_LOGIN_FAKE=1` point
# them at the local fake.
WECHAT_LOGIN_WEB_APPID = env.str("WECHAT_LOGIN_WEB_APPID", default="")
WECHAT_LOGIN_WEB_SECRET = env_secret("WECHAT_LOGIN_WEB_SECRET")
WECHAT_LOGIN_MP_APPID = env.str("WECHAT_LOGIN_MP_APPID", default="")
WECHAT_LOGIN_MP_SECRET = env_secret("WECHAT_LOGIN_MP_SECRET")
WECHAT_LOGIN_QR_URL = env.str("WECHAT_LOGIN_QR_URL", default="https://open.weixin.qq.com/connect/qrconnect")
WECHAT_LOGIN_MP_URL = env.str("WECHAT_LOGIN_MP_URL", default="https://open.weixin.qq.com/connect/oauth2/authorize")
WECHAT_LOGIN_API_URL = env.str("WECHAT_LOGIN_API_URL", default="https://api.weixin.qq.com").rstrip("/")
_wechat_login_app = (
    {"client_id": WECHAT_LOGIN_WEB_APPID, "secret": WECHAT_LOGIN_WEB_SECRET}
    if WECHAT_LOGIN_WEB_APPID and WECHAT_LOGIN_WEB_SECRET
    else {"client_id": WECHAT_LOGIN_MP_APPID, "secret": WECHAT_LOGIN_MP_SECRET}
    if WECHAT_LOGIN_MP_APPID and WECHAT_LOGIN_MP_SECRET
    else None
)
# No SocialApp rows: the app comes from these settings (accounts.wechat_login picks the official account's
# credentials inside WeChat's browser).
SOCIALACCOUNT_PROVIDERS = {"weixin": {"APPS": [_wechat_login_app] if _wechat_login_app else []}}
SOCIALACCOUNT_ADAPTER = "members.wechat_signup.WeChatSignUpAdapter"
ACCOUNT_ADAPTER = "accounts.wechat_login.AccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True  # a new WeChat user gets an account at once: no second form
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never match a WeChat identity to an account by email
SOCIALACCOUNT_STORE_TOKENS = False  # we only need who the person is, not WeChat's tokens
SOCIALACCOUNT_REQUESTS_TIMEOUT = env.int("WECHAT_LOGIN_TIMEOUT", default=5)
SOCIALACCOUNT_LOGIN_ON_GET = False  # the "Log in with WeChat" button posts (no login CSRF by a link)
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email"]  # optional: WeChat gives none
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
# allauth warns that logging in by email wants a required email at sign-up: its own sign-up page does; ours are the
# join pages (email, phone or WeChat), and a WeChat sign-up has no email.
SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "account.W001"]
# Notifications: how many recipients' events one task run fans out, and the retries of a failing channel.
NOTIFICATIONS_BATCH = env.int("NOTIFICATIONS_BATCH", default=500)
NOTIFICATIONS_FLAG_SECONDS = env.float("NOTIFICATIONS_FLAG_SECONDS", default=60.0)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
NOTIFICATIONS_RETRY_SECONDS = env.int("NOTIFICATIONS_RETRY_SECONDS", default=30)  # doubled after each failure
# The notifications' tasks on a queue of their own (start workers with `-Q celery,<name>`, or some with only it), so a
# burst of messages after an 11.11 split never waits in line with the split and the payouts; empty: the default queue.
NOTIFICATIONS_QUEUE = env.str("NOTIFICATIONS_QUEUE", default="")
if NOTIFICATIONS_QUEUE:
    CELERY_TASK_ROUTES = {"members.notifications.tasks.*": {"queue": NOTIFICATIONS_QUEUE}}
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {
    "task": "members.notifications.tasks.notifications_sweep_task",
    "schedule": 120.0,
}

# --- Identity (实名, issue #24; docs/privacy.md) ----------------------------------------------------------------
# Fernet keys that encrypt members' legal names and ID numbers, newest first: the first encrypts, all decrypt, so a
# rotation is "add the new key in front, run `manage.py identity_reencrypt`, then drop the old key". Either the
# variable or IDENTITY_KEYS_FILE (a mounted secret, one comma-separated line). The development keys below are public;
# production refuses to start with them (config/checks.py, cps.E008).
DEV_IDENTITY_KEY = "otLwl11QGMik9Po0gPIiYYC7j45zu1oNuRCIOKWVL9U="
DEV_IDENTITY_INDEX_KEY = "dev-identity-index-key-do-not-use-in-production"
IDENTITY_KEYS = [key.strip() for key in (env_secret("IDENTITY_KEYS") or DEV_IDENTITY_KEY).split(",") if key.strip()]
# The HMAC key of the blind index that keeps one ID number to one member (never rotated with IDENTITY_KEYS).
IDENTITY_INDEX_KEY = env_secret("IDENTITY_INDEX_KEY") or DEV_IDENTITY_INDEX_KEY
# Who checks a name and ID number against the authority's records: the console port (development: a resident ID
# whose check digit is right and whose name does not start with "X" matches) or Tencent Cloud's 身份证二要素核验.
IDENTITY_VERIFIER = env.str("IDENTITY_VERIFIER", default="core.id_verification.ConsoleIdVerifier")
IDENTITY_TENCENT_SECRET_ID = env.str("IDENTITY_TENCENT_SECRET_ID", default="")
IDENTITY_TENCENT_SECRET_KEY = env_secret("IDENTITY_TENCENT_SECRET_KEY")
IDENTITY_TENCENT_REGION = env.str("IDENTITY_TENCENT_REGION", default="ap-guangzhou")
IDENTITY_TENCENT_ENDPOINT = env.str("IDENTITY_TENCENT_ENDPOINT", default="faceid.tencentcloudapi.com")
IDENTITY_VERIFY_TIMEOUT = env.int("IDENTITY_VERIFY_TIMEOUT", default=10)

# Last, once every app's entry is in: each beat entry expires when its next run is due (config/beat.py).
CELERY_BEAT_SCHEDULE = with_expiry(CELERY_BEAT_SCHEDULE)

# --- Error reports (issue #26; config/error_reports.py) ------------------------------------------------------------
# Sentry's DSN (or SENTRY_DSN_FILE): errors of the web processes, workers and beat are reported there, redacted as the
# logs are. Unset: nothing is sent anywhere.
SENTRY_DSN = env_secret("SENTRY_DSN")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from config.error_reports import error_reports_start

    error_reports_start(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
