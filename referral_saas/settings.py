"""Settings, all from the environment (django-environ). `.env.example` lists every variable.

Production secrets have no defaults: with DEBUG off, SECRET_KEY must be set. With DATABASE_URL / REDIS_URL unset,
an embedded PostgreSQL and Redis are started under .data/ (see referral_saas/embedded.py) and DEBUG defaults on.
"""

import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured

from referral_saas.broker import AMQP_TRANSPORT_OPTIONS, broker_prefix, is_amqp, task_queues
from referral_saas.logging import install_record_factory

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

# pytest (>= 8.2) announces itself in the environment; tests get a throwaway key, nothing else differs.
TESTING = "PYTEST_VERSION" in os.environ

# A checkout that runs on the embedded PostgreSQL / Redis (DATABASE_URL or REDIS_URL unset) is a development machine:
# DEBUG defaults on there, so `manage.py <command>` next to a running `make run` gets the same settings (and the same
# dev SECRET_KEY, which the stored shop credentials are encrypted with). A deployment names its services and keeps
# DEBUG off unless it says otherwise; the tests keep it off too.
EMBEDDED_SERVICES = not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL")
DEBUG = env.bool("DEBUG", default=EMBEDDED_SERVICES and not TESTING)
# Commands that neither serve nor sign anything run from a bare checkout with a throwaway key.
OFFLINE_COMMANDS = {
    "makemigrations",
    "showmigrations",
    "makemessages",
    "compiletranslations",
    "spectacular",
    "collectstatic",
}
OFFLINE_COMMAND = len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") and sys.argv[1] in OFFLINE_COMMANDS
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "dev-only-secret-key-never-used-in-production-0123456789abcdef"  # noqa: S105 - DEBUG/tests only
    elif OFFLINE_COMMAND:
        SECRET_KEY = secrets.token_urlsafe(50)
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (50+ random characters) when DEBUG is off. For development, set DEBUG=true "
            "(the default when DATABASE_URL / REDIS_URL are unset and the embedded services are used)."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- services ---------------------------------------------------------------------------------------------------

if EMBEDDED_SERVICES:
    from referral_saas import embedded

    os.environ.update(embedded.missing_urls())

DATABASES = {"default": env.db_url("DATABASE_URL")}
# A unix-socket directory arrives percent-encoded in the URL host (postgres://user@%2Fpath%2Fto%2Fdir/db).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST") or "")
# Tests close connections after each request (live-server threads would otherwise keep the test database busy).
DATABASES["default"]["CONN_MAX_AGE"] = 0 if TESTING else env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# Only our few server-side prepared statements are affected (referral_saas/prepared.py): plan them once.
DATABASES["default"]["OPTIONS"]["options"] = "-c plan_cache_mode=force_generic_plan"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if TESTING:
    # Each test run has a database of its own (two runs on one machine never drop each other's); the system tier's
    # processes get the name passed to them in DATABASE_URL.
    DATABASES["default"]["TEST"] = {"NAME": f"test_rs_{os.getpid()}"}

REDIS_URL = env("REDIS_URL")
if TESTING:
    # Tests never share a Redis database with a development server (queues, click stream, cache).
    REDIS_URL = re.sub(r"/\d*$", "", REDIS_URL) + "/" + env("REDIS_TEST_DB", default="15")
# Every key we write to Redis starts with this (cache, rate limits, the click stream, the beat heartbeat, and the
# Celery queues when it is set), so that several deployments or test runs can share one Redis server without seeing,
# consuming or deleting each other's data. Each test run has its own ("test<pid>"), passed to the processes it starts.
REDIS_NAMESPACE = env("REDIS_NAMESPACE", default=f"test{os.getpid()}" if TESTING else "")
CACHES = {
    "default": {
        "BACKEND": "referral_saas.cache.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_NAMESPACE or env("CACHE_KEY_PREFIX", default="rs"),
        "TIMEOUT": 300,
        # A Redis that hangs must not hang a request: every cache call gives up after these (and fails open).
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    }
}
REDIS_KEY_PREFIX = CACHES["default"]["KEY_PREFIX"]

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Referral SaaS <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- applications -----------------------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "referral_saas.tenancy",
    "referral_saas.webhooks",
    "programs",
    "tracking",
    "rewards",
    "fraud",
    "analytics",
    "portal",
    "integrations",
]

MIDDLEWARE = [
    "referral_saas.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # /r/<code> answers here: a redirect needs none of the middleware below (tracking/middleware.py).
    "tracking.middleware.ReferralLinkMiddleware",
    # /api/v1/ answers here too: an API-key request needs none of the middleware below (referral_saas/middleware.py).
    "referral_saas.middleware.ShopApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "referral_saas.tenancy.middleware.CurrentMerchantMiddleware",
]

ROOT_URLCONF = "referral_saas.urls"
WSGI_APPLICATION = "referral_saas.wsgi.application"
AUTH_USER_MODEL = "tenancy.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- accounts (django-allauth) ----------------------------------------------------------------------------------

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SIGNUP_FORM_CLASS = "referral_saas.tenancy.forms.MerchantSignupForm"
ACCOUNT_ADAPTER = "referral_saas.tenancy.adapters.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Referral SaaS] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Referral SaaS"

# --- API --------------------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["referral_saas.tenancy.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["referral_saas.tenancy.authentication.HasMerchant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["referral_saas.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "referral_saas.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "referral_saas.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_CLASSES": ["referral_saas.throttling.ApiKeyRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=6000)  # per API key; 0 = unlimited
API_MAX_BODY_BYTES = 64 * 1024
DEMO_SHOP = env.bool("DEMO_SHOP", default=DEBUG)  # the demo storefront at /demo-shop/ (landing of the demo program)
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)  # the benchmarks' bare baseline view
NUM_PROXIES = env.int("NUM_PROXIES", default=0)  # trusted proxies in front: the client IP is that many hops back
# Raw clicks are kept this many full months before the current one (their month partitions are then dropped, once
# the rollups have counted them; the dashboards keep their numbers). 0 keeps them forever.
CLICK_RETENTION_MONTHS = env.int("CLICK_RETENTION_MONTHS", default=13)
CLICK_PARTITIONS_AHEAD = env.int("CLICK_PARTITIONS_AHEAD", default=3)  # month partitions made ahead of time
SPECTACULAR_SETTINGS = {
    "TITLE": "Referral SaaS shop API",
    "DESCRIPTION": (
        "Report sign-ups, orders and refunds, validate codes, list and redeem rewards. "
        "Authenticate with `Authorization: Bearer rk_live_...` (or `rk_test_...` for test-mode data)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its documentation pages are public: no API key is read there (a bad one was a 500 while the
    # docs page rendered, since its template asks for the user).
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The webhook endpoints API and the Zapier hooks API name the same event types: one schema component.
    "ENUM_NAME_OVERRIDES": {"WebhookEventEnum": "referral_saas.webhooks.models.EVENT_TYPES"},
}

# --- i18n, time, static -----------------------------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pl", "Polski"), ("ro", "Română"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default="") or BASE_DIR / ".data" / "staticfiles")  # empty: the default
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not (DEBUG or TESTING))
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / ".data" / "media"
WHITENOISE_USE_FINDERS = DEBUG

# --- security ---------------------------------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not (DEBUG or TESTING))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not (DEBUG or TESTING))
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Celery -----------------------------------------------------------------------------------------------------

# The broker: Redis (REDIS_URL) by default; CELERY_BROKER_URL (or BROKER_URL) = amqp://user:password@host:5672/vhost
# switches it to RabbitMQ (referral_saas/broker.py). Redis stays the result backend, the cache and the click buffer.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or env("BROKER_URL", default="") or REDIS_URL
BROKER_IS_AMQP = is_amqp(CELERY_BROKER_URL)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Attributed orders one rewards task scores and decides in one transaction (rewards.services.batch; 1 = one at a
# time). Each batch also pays a fixed cost of about a second (its follow-up, commit and emails), so a bigger batch
# goes faster: the Procfile's worker decided 130-141 orders/s with 200 and about 300/s with 500 (docs/benchmarks.md).
# A batch holds its orders' referral rows for its ~2 s: far below the soft time limit.
REWARDS_BATCH_SIZE = env.int("REWARDS_BATCH_SIZE", default=500)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing fails fast when the broker is down (the default retries forever and would hang the request); the work
# is in PostgreSQL and the sweepers resend it.
_FAIL_FAST = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Redis: unacknowledged messages return to the queue after this long (a killed worker's tasks come back). Tasks
# never use countdowns longer than this: long waits (holds, webhook backoff) are kept in PostgreSQL and swept by
# beat. (RabbitMQ gives a dead worker's messages back as soon as its connection drops.)
BROKER_VISIBILITY_TIMEOUT = env.int("BROKER_VISIBILITY_TIMEOUT", default=3600)
# RabbitMQ's names carry the namespace too (queues, exchanges, the dead-letter queue): several test runs or
# deployments share one vhost without seeing each other's messages.
BROKER_PREFIX = broker_prefix(REDIS_NAMESPACE) if BROKER_IS_AMQP else ""
if BROKER_IS_AMQP:
    CELERY_BROKER_TRANSPORT_OPTIONS = {**_FAIL_FAST, **AMQP_TRANSPORT_OPTIONS}  # publisher confirms
    # Quorum queues keep no global prefetch: Celery sees them and counts prefetch per consumer (still 1 x processes).
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
        # How often a worker sweeps for messages whose worker died and whose timeout passed (interval x throttle):
        # kombu's ~100 s for the usual hour; about every second for the short timeout of the system tests.
        "unacked_restore_interval": max(1, min(10, BROKER_VISIBILITY_TIMEOUT // 50)),
        "unacked_restore_throttle": max(1, min(10, BROKER_VISIBILITY_TIMEOUT // 50)),
        **_FAIL_FAST,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    if REDIS_NAMESPACE:
        # Queues, unacked messages and bindings under the namespace. Unset in a deployment: its queues keep the names
        # they always had. (`<namespace>:celery:`, apart from our own keys: a queue named "clicks" must not meet the
        # click stream.)
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = f"{REDIS_NAMESPACE}:celery:"
if REDIS_NAMESPACE:
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_NAMESPACE}:celery:"}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUE_NAMES = ["default", "clicks", "rewards", "fraud", "webhooks", "analytics", "integrations"]
CELERY_TASK_QUEUES = task_queues(CELERY_QUEUE_NAMES, amqp=BROKER_IS_AMQP, prefix=BROKER_PREFIX)
CELERY_TASK_ROUTES = {
    "tracking.*": {"queue": "clicks"},
    "rewards.*": {"queue": "rewards"},
    "fraud.*": {"queue": "fraud"},
    "referral_saas.webhooks.*": {"queue": "webhooks"},
    "analytics.*": {"queue": "analytics"},
    "integrations.*": {"queue": "integrations"},
}
# How often beat issues the rewards whose hold ended (and retries coupons a connected shop refused).
REWARDS_RELEASE_EVERY = env.float("REWARDS_RELEASE_EVERY_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE_FILENAME = env("BEAT_SCHEDULE_FILE", default=str(BASE_DIR / ".data" / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE = {
    "beat-heartbeat": {"task": "referral_saas.beat_heartbeat", "schedule": 30.0},
    "purge-expired-invitations": {"task": "referral_saas.tenancy.purge_expired_invitations", "schedule": 3600.0},
    "purge-idempotency-keys": {"task": "referral_saas.tenancy.purge_idempotency_keys", "schedule": 3600.0},
    # An ingest waits in the queue while a busy worker decides a backlog of orders. With a 10 s expiry every one of
    # them had expired by its turn (the queue is first in, first out), so no click was stored until the queue had
    # emptied: 6,399 clicks waited 5 minutes after `bench sustained`'s load stopped. A late ingest is still useful
    # (it drains what arrived meanwhile) and an idle one costs a millisecond; older than 5 minutes, it is dropped.
    "ingest-clicks": {"task": "tracking.ingest_clicks", "schedule": 2.0, "options": {"expires": 300}},
    "analytics-rollup": {"task": "analytics.rollup", "schedule": 60.0, "options": {"expires": 55}},
    "click-partitions": {"task": "tracking.click_partitions", "schedule": 6 * 3600.0, "options": {"expires": 3600}},
    "click-retention": {"task": "analytics.click_retention", "schedule": 86400.0, "options": {"expires": 3600}},
    "release-rewards": {"task": "rewards.release_due", "schedule": REWARDS_RELEASE_EVERY, "options": {"expires": 60}},
    "rewards-sweeper": {"task": "rewards.sweep", "schedule": 60.0, "options": {"expires": 120}},
    "webhooks-sweep": {"task": "referral_saas.webhooks.sweep", "schedule": 10.0, "options": {"expires": 30}},
    "webhooks-purge": {"task": "referral_saas.webhooks.purge", "schedule": 86400.0},
    "integrations-sweep": {"task": "integrations.sweep", "schedule": 30.0, "options": {"expires": 60}},
    "integrations-reconcile": {"task": "integrations.reconcile_all", "schedule": 900.0, "options": {"expires": 600}},
}

# --- logging ----------------------------------------------------------------------------------------------------

install_record_factory()
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "referral_saas.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "referral_saas.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
    },
}

# --- product limits ---------------------------------------------------------------------------------------------

INVITATION_TTL_DAYS = 7
# A coupon reward the shop platform did not confirm (down, refused) is tried again after this long.
REWARDS_PLATFORM_RETRY_SECONDS = env.int("REWARDS_PLATFORM_RETRY_SECONDS", default=60)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# Outgoing webhooks to loopback, private, link-local, reserved, multicast or unspecified addresses are refused
# (at creation and on every connection) unless this is on: development, and tests that deliver to 127.0.0.1.
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
# Shop integrations: Fernet keys that encrypt stored shop credentials, comma-separated, the first one encrypts
# (rotation: put a new key first, run `manage.py rotate_integration_keys`, then drop the old one). Unset: a key
# derived from SECRET_KEY (development and tests; a deploy check warns).
INTEGRATIONS_KEYS = env.list("INTEGRATIONS_KEYS", default=[])
# The Shopify app (Partner dashboard) merchants install by OAuth; unset, only pasting a custom app's token works.
SHOPIFY_CLIENT_ID = env("SHOPIFY_CLIENT_ID", default="")
SHOPIFY_CLIENT_SECRET = env("SHOPIFY_CLIENT_SECRET", default="")
SHOPIFY_SCOPES = env("SHOPIFY_SCOPES", default="read_orders,read_customers,read_discounts,write_discounts")
SHOPIFY_OAUTH_BASE_URL = env("SHOPIFY_OAUTH_BASE_URL", default="")  # tests: a local server instead of the shop
# How far back reconciliation looks the first time, and how much each run overlaps the previous one.
INTEGRATIONS_RECONCILE_START_HOURS = env.int("INTEGRATIONS_RECONCILE_START_HOURS", default=24)
