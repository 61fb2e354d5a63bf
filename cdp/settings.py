"""One settings file, driven by environment variables with safe local defaults.

Unset DATABASE_URL means an embedded SQLite file; unset REDIS_URL means Celery tasks run
inline and the cache is local memory, so `make run` works with nothing installed.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# A fixed key is only acceptable for local use; production must set SECRET_KEY (check --deploy
# refuses the default because it starts with "django-insecure").
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-local-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "template_partials",
    "cdp",
    "access",
    "profiles",
    "identity",
    "consent",
    "segments",
    "campaigns",
    "recommendations",
    "experiences",
]

MIDDLEWARE = [
    "cdp.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Serves /v1/ (ingestion) itself: the middleware below does not run for those routes.
    "profiles.ingest_middleware.IngestRoutesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "access.accounts.MfaRequiredMiddleware",
    "access.accounts.SessionLastSeenMiddleware",
]

ROOT_URLCONF = "cdp.urls"
WSGI_APPLICATION = "cdp.wsgi.application"

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
                "access.roles.roles_context",
                "profiles.context_processors.workspace_currency_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # A kept connection that the server dropped (restart, killed backend) is replaced at
        # the start of the next request instead of failing it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads of the dev server, inline tasks and (with REDIS_URL) worker processes
    # write to one file: wait, do not fail. IMMEDIATE takes the write lock when a transaction
    # begins; a deferred one that reads then writes gets "database is locked" at once instead
    # of waiting for the timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Reads miss and writes are skipped while Redis is down (cdp/cache.py).
            "BACKEND": "cdp.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "cdp"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# Staff accounts are created by admins; nobody signs themselves up to a CDP holding PII.
ACCOUNT_ADAPTER = "access.accounts.StaffOnlyAccountAdapter"
# Failed logins and reset mails are limited per (client address, account) pair (the adapter
# keys "key" limits on both), so nobody can lock another person out; and per address.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip",
    "reset_password_mail": "3/10m/key",
}
# How many reverse proxies of ours stand in front of the app (each appends to
# X-Forwarded-For); 0 trusts no forwarded address. Client addresses (audit rows, rate limits)
# come from `access.auth.client_ip`, which reads it.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# Content-Security-Policy (django-csp): scripts only from this site's own files, so an
# injected <script> or on*= attribute does not run. Templates pass data to scripts with
# `json_script` and wire behaviour with data- attributes; inline style attributes stay allowed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Second factors: required for the admin and compliance roles (access.accounts), optional for
# marketers. WebAuthn needs HTTPS except on localhost-style origins while DEBUG is on.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_ADAPTER = "access.accounts.StaffMfaAdapter"
MFA_TOTP_ISSUER = os.environ.get("MFA_TOTP_ISSUER", "CDP")
# A code from the previous or next 30-second step is accepted too (phone clocks drift).
MFA_TOTP_TOLERANCE = 1
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env_bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", DEBUG)
# The sessions page (/accounts/sessions/) lists each staff user's sessions, recorded at login,
# with when each was last seen; ending one is audited. Activity is recorded by
# access.accounts.SessionLastSeenMiddleware (not allauth's, which writes on every request) at
# most once per USERSESSIONS_LAST_SEEN_SECONDS per session.
USERSESSIONS_ADAPTER = "access.accounts.AuditedUserSessionsAdapter"
USERSESSIONS_TRACK_ACTIVITY = True
USERSESSIONS_LAST_SEEN_SECONDS = int(os.environ.get("USERSESSIONS_LAST_SEEN_SECONDS", "60"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Vendored files carry their version in the name, so no manifest is needed for cache busting.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Serve straight from the source folders when collectstatic has not run (dev, tests).
WHITENOISE_USE_FINDERS = True

# Email (campaigns, notifications).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "cdp@localhost")

# Production hardening; all on unless DEBUG, so `check --deploy` passes with DEBUG=false.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers and Prometheus probe nodes over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["access.auth.DenyAll"],
    # Strict JSON (see cdp/parsers.py); form and multipart stay for clients that post empty
    # bodies to action endpoints that way, as DRF's test client does by default.
    "DEFAULT_PARSER_CLASSES": [
        "access.parsers.JSONParser",
        "access.parsers.FormParser",
        "access.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["access.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("API_KEY_RATE", "6000/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CDP API",
    "DESCRIPTION": "Management REST API of the customer data platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies as their own components, so that they say what input serializers refuse
    # (blank strings: `minLength: 1`; read-only fields left out).
    "COMPONENT_SPLIT_REQUEST": True,
    # Envelopes, errors and the /v1/ ingestion routes: cdp/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cdp.schema.api_conventions",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CampaignKindEnum": "campaigns.models.Campaign.Kind",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "ChannelKindEnum": "campaigns.models.Channel.Kind",
    },
}

# Celery: Redis broker when REDIS_URL is set, otherwise tasks run inline in the caller.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "300"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "360"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("ingest"), Queue("default"), Queue("ml"))
CELERY_TASK_ROUTES = {
    "cdp.tasks.events_*": {"queue": "ingest"},
    # Catalog imports are I/O and small writes: not worth waiting behind a training.
    "recommendations.tasks.item_import_task": {"queue": "default"},
    "recommendations.tasks.*": {"queue": "ml"},
    "segments.tasks.model_*": {"queue": "ml"},
    "identity.tasks.identity_rescan_task": {"queue": "ml"},
}
# Redis redelivers an unacknowledged task after this; longer than any task may run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "events-process-pending": {
        "task": "cdp.tasks.events_process_pending_task",
        "schedule": crontab(minute="*"),
    },
    "identity-match-incremental": {
        "task": "identity.tasks.identity_match_incremental_task",
        "schedule": crontab(minute="*/10"),
    },
    # Time-relative segment conditions ("no order in 30 days") move without events.
    "segments-refresh-all": {
        "task": "segments.tasks.segments_refresh_all_task",
        "schedule": crontab(minute="*/15"),
    },
    "segments-models-retrain": {
        "task": "segments.tasks.models_retrain_all_task",
        "schedule": crontab(hour="3", minute="30"),
    },
    # After the nightly retrains: today's scores against each serving model's training ones.
    "segments-models-drift": {
        "task": "segments.tasks.model_drift_check_task",
        "schedule": crontab(hour="6", minute="20"),
    },
}
# Model drift: a population stability index (segments.ml.drift) at or above this is shown as
# a warning on the models pages (customary: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant).
MODEL_DRIFT_PSI_THRESHOLD = float(os.environ.get("MODEL_DRIFT_PSI_THRESHOLD", "0.2"))
CELERY_TIMEZONE = TIME_ZONE

# Ingestion limits, as Segment's tracking API.
INGEST_MAX_MESSAGE_BYTES = 32 * 1024
INGEST_MAX_REQUEST_BYTES = 500 * 1024
# Events per processing task; the worker handles one chunk in a few bulk statements.
INGEST_PROCESS_CHUNK = int(os.environ.get("INGEST_PROCESS_CHUNK", "500"))
# Unprocessed events beyond which /healthz and /metrics report backpressure (nothing is refused).
INGEST_BACKLOG_THRESHOLD = int(os.environ.get("INGEST_BACKLOG_THRESHOLD", "50000"))
# How far a sender's clock (sentAt against receivedAt) or an event time ahead of receivedAt may
# be before the time is corrected for the drift or clamped (profiles.ingestion).
INGEST_CLOCK_TOLERANCE_SECONDS = int(os.environ.get("INGEST_CLOCK_TOLERANCE_SECONDS", "60"))

PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "US")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request's URL at INFO (webhook URLs may carry tokens).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Consent and privacy (consent/). Identifiers kept after an erasure (suppressions, tombstones,
# finished requests) are HMAC-SHA256 hashes under this key; changing it orphans them.
PRIVACY_HASH_KEY = os.environ.get("PRIVACY_HASH_KEY", SECRET_KEY)
# Days to answer a request, per regulation (GDPR art. 12(3): one month; CCPA: 45 days).
PRIVACY_DUE_DAYS = {
    "GDPR": int(os.environ.get("PRIVACY_DUE_DAYS_GDPR", "30")),
    "CCPA": int(os.environ.get("PRIVACY_DUE_DAYS_CCPA", "45")),
    "OTHER": int(os.environ.get("PRIVACY_DUE_DAYS_OTHER", "30")),
}
# The currency revenue is counted in (ISO 4217); orders in others are converted with the rates
# an admin sets on the Data page (profiles.services.money).
WORKSPACE_CURRENCY = os.environ.get("WORKSPACE_CURRENCY", "USD").strip().upper()
# Access exports (JSON files) live under MEDIA_ROOT/<this>; only compliance/admin download them.
PRIVACY_EXPORT_DIR = os.environ.get("PRIVACY_EXPORT_DIR", "exports")
# After an erasure, the models trained on the erased people's data (segments' propensity and
# clustering, the recommender) are retrained without them this many seconds later; the erasures
# of that interval share one retraining.
ERASURE_RETRAIN_DELAY_SECONDS = float(os.environ.get("ERASURE_RETRAIN_DELAY_SECONDS", "600"))
# Trait names holding personal data: masked for roles outside PII_VISIBLE_ROLES and pseudonymised
# in marketing exports.
PII_TRAITS = env_list(
    "PII_TRAITS",
    "email,phone,name,first_name,last_name,firstName,lastName,address,street,birthday,"
    "date_of_birth,ip",
)
PII_VISIBLE_ROLES = env_list("PII_VISIBLE_ROLES", "compliance,admin")
# What happens to an event whose profile has not consented to `analytics`: "minimal" keeps
# type, name, ids and time and strips properties and context; "drop" discards it; "keep" keeps
# everything (for deployments that process analytics on another legal basis).
CONSENT_WITHOUT_ANALYTICS = os.environ.get("CONSENT_WITHOUT_ANALYTICS", "minimal")
# Other processes see a new suppression within this many seconds (the creating one at once).
SUPPRESSION_REFRESH_SECONDS = float(os.environ.get("SUPPRESSION_REFRESH_SECONDS", "1"))
RETENTION_PURGE_BATCH = int(os.environ.get("RETENTION_PURGE_BATCH", "5000"))
# The audit page checks new audit rows on every view and rehashes the whole chain this often.
AUDIT_CHAIN_FULL_CHECK_SECONDS = int(os.environ.get("AUDIT_CHAIN_FULL_CHECK_SECONDS", "3600"))
# The audit chain's head is anchored outside the database (beat, and `manage.py audit_verify`)
# so that someone able to rewrite every row and hash cannot do it unseen: lines appended to this
# file, signed with this key. Put the file where the database's administrators cannot write (an
# append-only mount, `chattr +a`, a volume other machines share) and keep the key out of the
# database; every worker and the web servers must see the same file.
AUDIT_ANCHOR_PATH = os.environ.get("AUDIT_ANCHOR_PATH", str(BASE_DIR / "var" / "audit-anchors"))
AUDIT_ANCHOR_KEY = os.environ.get("AUDIT_ANCHOR_KEY", SECRET_KEY)
CELERY_BEAT_SCHEDULE |= {
    "audit-chain-anchor": {
        "task": "access.tasks.audit_chain_anchor_task",
        "schedule": crontab(minute="*/10"),
    },
    "privacy-requests-process": {
        "task": "consent.tasks.privacy_requests_process_due_task",
        "schedule": crontab(minute="*/5"),
    },
    "retention-purge": {
        "task": "consent.tasks.retention_purge_task",
        "schedule": crontab(minute=17),
    },
}

# Campaigns (campaigns/). The workspace's zone answers for recipients without
# `context.timezone`; quiet hours ("21-8": from 21:00 to 08:00 local) delay marketing sends;
# the frequency cap ("3/7": at most 3 marketing messages in 7 days per person) is the default
# that a campaign's `frequency_cap` overrides.
CAMPAIGN_TIMEZONE = os.environ.get("CAMPAIGN_TIMEZONE", TIME_ZONE)
_quiet = os.environ.get("CAMPAIGN_QUIET_HOURS", "21-8").strip()
CAMPAIGN_QUIET_HOURS = tuple(int(hour) for hour in _quiet.split("-", 1)) if _quiet else None
_cap_messages, _cap_days = os.environ.get("CAMPAIGN_FREQUENCY_CAP", "3/7").split("/", 1)
CAMPAIGN_FREQUENCY_CAP = {"messages": int(_cap_messages), "days": int(_cap_days)}
# Sends that fail for a reason worth retrying are tried this many times, backing off.
CAMPAIGN_SEND_ATTEMPTS = int(os.environ.get("CAMPAIGN_SEND_ATTEMPTS", "8"))
# A channel whose every send failed for this many days is disabled (Svix disables after 5).
CAMPAIGN_CHANNEL_FAILING_DAYS = int(os.environ.get("CAMPAIGN_CHANNEL_FAILING_DAYS", "5"))
# The workspace holdout: this percentage of people (fixed by a hash of their id) receives no
# marketing at all, so that the lift of all campaigns together can be measured against them.
CAMPAIGN_HOLDOUT_PERCENT = float(os.environ.get("CAMPAIGN_HOLDOUT_PERCENT", "0"))
# Webhook and push requests one send task keeps in flight at once (over pooled connections).
# Browser Web Push (VAPID, RFC 8292): the platform's private key (PEM or raw base64url; when
# unset, one is generated and stored encrypted) and the contact push services may write to.
WEBPUSH_VAPID_PRIVATE_KEY = os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY", "")
WEBPUSH_VAPID_SUBJECT = os.environ.get("WEBPUSH_VAPID_SUBJECT", f"mailto:{DEFAULT_FROM_EMAIL}")
CAMPAIGN_SEND_CONCURRENCY = int(os.environ.get("CAMPAIGN_SEND_CONCURRENCY", "4"))
CELERY_BEAT_SCHEDULE |= {
    # Bandits re-read their conversions and record the allocation they give.
    "campaigns-bandits-refresh": {"task": "campaigns.tasks.bandits_refresh_task", "schedule": 60.0},
    # Waits end and quiet hours lift without any event: a worker picks up what is due.
    "campaigns-entries-due": {"task": "campaigns.tasks.entries_due_task", "schedule": 10.0},
    "campaigns-deliveries-due": {"task": "campaigns.tasks.deliveries_due_task", "schedule": 30.0},
    "campaigns-broadcasts-due": {"task": "campaigns.tasks.broadcasts_due_task", "schedule": 60.0},
}

# Outbound HTTP to configured URLs (campaign webhooks, segment webhooks) goes through
# access.outbound, which refuses private, loopback, link-local and metadata addresses. Hosts or
# networks listed here ("hooks.internal,10.1.0.0/16") are let through: tests, on-prem receivers.
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", "")
OUTBOUND_TIMEOUT = float(os.environ.get("OUTBOUND_TIMEOUT", "10"))
CELERY_BEAT_SCHEDULE["recommendations-retrain"] = {
    "task": "recommendations.tasks.models_retrain_task",
    "schedule": crontab(hour="4", minute="10"),
}
CELERY_BEAT_SCHEDULE["recommendations-drift"] = {
    "task": "recommendations.tasks.model_drift_check_task",
    "schedule": crontab(hour="6", minute="40"),
}

# Recommendations (recommendations/). An interaction's weight is its kind's weight times
# 0.5 ** (age in days / half-life): views count less than carts, carts less than purchases.
RECS_INTERACTION_WEIGHTS = {
    "view": float(os.environ.get("RECS_WEIGHT_VIEW", "0.2")),
    "cart": float(os.environ.get("RECS_WEIGHT_CART", "0.5")),
    "purchase": float(os.environ.get("RECS_WEIGHT_PURCHASE", "1.0")),
}
# 30 days was best of 15-120 (and no decay) on the validation window of UCI Online Retail.
RECS_HALF_LIFE_DAYS = float(os.environ.get("RECS_HALF_LIFE_DAYS", "30"))
# "Buy again" ranks a person's purchases with a slower decay (no decay was best there).
RECS_REPEAT_HALF_LIFE_DAYS = float(os.environ.get("RECS_REPEAT_HALF_LIFE_DAYS", "365"))
# A new model is judged on the last this-many days of the data, fitted on what came before.
RECS_VALIDATION_DAYS = float(os.environ.get("RECS_VALIDATION_DAYS", "30"))
# The kind the nightly retrain trains while no model serves.
RECS_DEFAULT_KIND = os.environ.get("RECS_DEFAULT_KIND", "hybrid")
# Cached lists are invalidated by new events and catalog changes; this only bounds orphans.
RECS_CACHE_SECONDS = int(os.environ.get("RECS_CACHE_SECONDS", "300"))
# People whose recommendation scores the drift check compares (recently active ones).
RECS_DRIFT_SAMPLE = int(os.environ.get("RECS_DRIFT_SAMPLE", "1000"))

# Personalised content (experiences/): bandits re-read their conversions every minute.
CELERY_BEAT_SCHEDULE["experiences-bandits-refresh"] = {
    "task": "experiences.tasks.experience_bandits_refresh_task",
    "schedule": 60.0,
}
