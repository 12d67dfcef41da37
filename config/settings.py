"""Settings, read from the environment (12-factor) with django-environ.

Every value has a default that works on one machine for development; production sets
`DJANGO_DEBUG=false`, a real `DJANGO_SECRET_KEY`, `DATABASE_URL`, `SHADOW_SERVERS` and
`CELERY_BROKER_URL`. The README has the full table.
"""

from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-key-change-me-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "changeapi",
    "approvals",
]

MIDDLEWARE = [
    "changeapi.api.limits.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The service's own data. SQLite works on one machine; PostgreSQL is what production and the
# test suite use.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A request or task reuses its process's connection to the service database for this long
# (seconds; 0 connects for each), checked before reuse: connecting costs a few milliseconds of
# every request and dry-run otherwise.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_RAISE_403 = False
GUARDIAN_MONKEY_PATCH_USER = False
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("SCHEMAGATE_MAX_BODY_BYTES", default=5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "changeapi.api.authentication.ApiKeyAuthentication",
        "changeapi.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "changeapi.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "changeapi.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # JSON for clients; for a browser (Accept: text/html, or ?format=api), DRF's browsable API.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["changeapi.api.parsers.SafeJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "changeapi.api.throttling.IdentityRateThrottle",
        "changeapi.api.throttling.SubmitRateThrottle",
    ],
}

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Schemagate API",
    "DESCRIPTION": (
        "Review gate for Django schema changes: submit a model diff, get a dry-run report "
        "from a shadow database, review it under a policy, release a bundle."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ChangeRequestStatus": "changeapi.models.ChangeRequest.Status",
        "DryRunStatus": "changeapi.models.DryRun.Status",
        "BaselineStatus": "changeapi.models.Baseline.Status",
        "ReviewDecision": "approvals.models.Review.Decision",
        "DatabaseEngine": "changeapi.models.Project.Engine",
        "ApprovalRuleKind": "approvals.models.ApprovalRule.Kind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "changeapi.api.schema_hooks.problem_responses_hook",
    ],
}

# Celery: without a broker every task runs in-process, at commit of the request that queued it.
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("SCHEMAGATE_DRY_RUN_SOFT_LIMIT_SECONDS", default=600)
CELERY_TASK_TIME_LIMIT = env.int("SCHEMAGATE_DRY_RUN_HARD_LIMIT_SECONDS", default=660)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "reclaim-dry-runs": {"task": "changeapi.tasks.dry_runs_reclaim_task", "schedule": 30.0},
    "reap-shadow-databases": {"task": "changeapi.tasks.shadows_reap_task", "schedule": 300.0},
    # Each project's own schedule (drift_check_interval_minutes) says when its check is due.
    "check-schema-drift": {"task": "changeapi.tasks.drift_checks_due_task", "schedule": 60.0},
}

# Shadow servers: admin URLs of servers the service may create and drop databases on.
# Each shadow job connects as a role of its own (no superuser, owning only its database);
# SHADOW_OWNER_ROLE (no login) owns the objects inside templates and spares.
SHADOW_SERVERS = env.list("SHADOW_SERVERS", default=["postgres://postgres@127.0.0.1:5432/postgres"])
SHADOW_OWNER_ROLE = env.str("SHADOW_OWNER_ROLE", default="schemagate_shadow_owner")
SHADOW_DATABASE_PREFIX = env.str("SHADOW_DATABASE_PREFIX", default="sg_")
SHADOW_STATEMENT_TIMEOUT_MS = env.int("SHADOW_STATEMENT_TIMEOUT_MS", default=60_000)
SHADOW_LOCK_TIMEOUT_MS = env.int("SHADOW_LOCK_TIMEOUT_MS", default=5_000)
# How much a job's database may grow past its size at connect, and its temporary files per session.
SHADOW_MAX_CLONE_GROWTH_BYTES = env.int("SHADOW_MAX_CLONE_GROWTH_BYTES", default=1 << 30)
SHADOW_TEMP_FILE_LIMIT_KB = env.int("SHADOW_TEMP_FILE_LIMIT_KB", default=1 << 20)
SHADOW_CONNECT_TIMEOUT_SECONDS = env.int("SHADOW_CONNECT_TIMEOUT_SECONDS", default=5)
SHADOW_MAX_CONCURRENT_PER_SERVER = env.int("SHADOW_MAX_CONCURRENT_PER_SERVER", default=4)
# Warm spare clones kept per template (a dry-run renames one into place instead of cloning):
# at least SHADOW_SPARE_CLONES, and as many as the template's dry-runs that ran at once within
# the last SHADOW_SPARE_DEMAND_WINDOW_SECONDS, up to SHADOW_SPARE_CLONES_MAX.
SHADOW_SPARE_CLONES = env.int("SHADOW_SPARE_CLONES", default=1)
SHADOW_SPARE_CLONES_MAX = env.int("SHADOW_SPARE_CLONES_MAX", default=4)
SHADOW_SPARE_DEMAND_WINDOW_SECONDS = env.int("SHADOW_SPARE_DEMAND_WINDOW_SECONDS", default=900)
# After a dry-run is recorded, drop its clone and make the next spare on a background thread,
# off the request's path; off: in the caller (the test suite, for determinism).
SHADOW_CHORES_IN_BACKGROUND = env.bool("SHADOW_CHORES_IN_BACKGROUND", default=True)

# Dry-run jobs: leases, retries, and fairness between projects.
SCHEMAGATE_DRY_RUN_LEASE_SECONDS = env.int("SCHEMAGATE_DRY_RUN_LEASE_SECONDS", default=60)
SCHEMAGATE_DRY_RUN_MAX_ATTEMPTS = env.int("SCHEMAGATE_DRY_RUN_MAX_ATTEMPTS", default=3)
SCHEMAGATE_DRY_RUN_REQUEUE_AFTER_SECONDS = env.int("SCHEMAGATE_DRY_RUN_REQUEUE_AFTER_SECONDS", default=300)
SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT = env.int("SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT", default=4)
# Batches of each Backfill step a dry-run runs on the clone to time it (docs/backfills.md).
SCHEMAGATE_BACKFILL_SAMPLE_BATCHES = env.int("SCHEMAGATE_BACKFILL_SAMPLE_BATCHES", default=5)
# A running backfill that has not reported for this long is shown as stalled.
SCHEMAGATE_BACKFILL_STALL_SECONDS = env.int("SCHEMAGATE_BACKFILL_STALL_SECONDS", default=600)
# bundle.backfill_progress is sent at most this often per backfill.
SCHEMAGATE_BACKFILL_PROGRESS_WEBHOOK_SECONDS = env.int("SCHEMAGATE_BACKFILL_PROGRESS_WEBHOOK_SECONDS", default=60)

# Intake limits (they protect the parser and the shadow from oversized submissions).
SCHEMAGATE_MAX_OPERATIONS = env.int("SCHEMAGATE_MAX_OPERATIONS", default=500)
SCHEMAGATE_MAX_MIGRATIONS = env.int("SCHEMAGATE_MAX_MIGRATIONS", default=2000)
# A baseline is a whole history: its own, much larger bound.
SCHEMAGATE_MAX_BASELINE_OPERATIONS = env.int("SCHEMAGATE_MAX_BASELINE_OPERATIONS", default=100_000)
SCHEMAGATE_MAX_SOURCE_BYTES = env.int("SCHEMAGATE_MAX_SOURCE_BYTES", default=1_000_000)
# Statements of an uploaded pg_dump --schema-only script (a few per table, index and constraint).
SCHEMAGATE_MAX_DUMP_STATEMENTS = env.int("SCHEMAGATE_MAX_DUMP_STATEMENTS", default=100_000)
# Nesting of any JSON body (arrays and objects); measured before the body is parsed.
SCHEMAGATE_MAX_JSON_DEPTH = env.int("SCHEMAGATE_MAX_JSON_DEPTH", default=64)
SCHEMAGATE_MAX_AST_DEPTH = env.int("SCHEMAGATE_MAX_AST_DEPTH", default=100)
SCHEMAGATE_MAX_AST_NODES = env.int("SCHEMAGATE_MAX_AST_NODES", default=200_000)
# Reading one submitted file: interpreted steps, call depth of its own functions, CPU seconds.
SCHEMAGATE_MAX_INTAKE_STEPS = env.int("SCHEMAGATE_MAX_INTAKE_STEPS", default=1_000_000)
SCHEMAGATE_MAX_INTAKE_CALL_DEPTH = env.int("SCHEMAGATE_MAX_INTAKE_CALL_DEPTH", default=20)
SCHEMAGATE_MAX_INTAKE_CPU_SECONDS = env.float("SCHEMAGATE_MAX_INTAKE_CPU_SECONDS", default=10.0)
# Refused files listed in one answer to an upload of migration files.
SCHEMAGATE_MAX_REPORTED_PROBLEMS = env.int("SCHEMAGATE_MAX_REPORTED_PROBLEMS", default=50)
SCHEMAGATE_DRY_RUN_WALL_SECONDS = env.int("SCHEMAGATE_DRY_RUN_WALL_SECONDS", default=300)
# Synthetic rows per table in a seeded template (in proportion to the uploaded table stats).
SCHEMAGATE_SEED_MAX_ROWS = env.int("SCHEMAGATE_SEED_MAX_ROWS", default=100_000)
# Access patterns: how many per project, and when a plan counts as regressed.
SCHEMAGATE_MAX_ACCESS_PATTERNS = env.int("SCHEMAGATE_MAX_ACCESS_PATTERNS", default=100)
SCHEMAGATE_PLAN_REGRESSION_FACTOR = env.float("SCHEMAGATE_PLAN_REGRESSION_FACTOR", default=2.0)
SCHEMAGATE_PLAN_LARGE_TABLE_ROWS = env.int("SCHEMAGATE_PLAN_LARGE_TABLE_ROWS", default=10_000)

# Rate limits per user or API key (DRF throttling; the counters live in CACHE_URL's cache).
SCHEMAGATE_RATE_LIMIT = env.str("SCHEMAGATE_RATE_LIMIT", default="600/min")
SCHEMAGATE_SUBMIT_RATE_LIMIT = env.str("SCHEMAGATE_SUBMIT_RATE_LIMIT", default="60/min")
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Release bundles: the Ed25519 signing key (PEM, PKCS#8). Without one, a key is derived from
# SECRET_KEY so a single machine works out of the box.
SCHEMAGATE_SIGNING_KEY = env.str("SCHEMAGATE_SIGNING_KEY", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- Production security -----------------------------------------------------------------------
# Plain http on localhost (the test suite, the demo) works with the defaults. Production, served
# over TLS, sets DJANGO_DEBUG=false and DJANGO_SECURE=true: HTTPS redirect, HSTS, secure cookies,
# and a refusal to start without a strong DJANGO_SECRET_KEY from the environment (it signs
# sessions, derives the shadow runner's password and, without SCHEMAGATE_SIGNING_KEY, the bundle
# signing key). `manage.py check --deploy` is clean in that mode; docs/operations.md has the table.
SCHEMAGATE_SECURE = env.bool("DJANGO_SECURE", default=False)
if SCHEMAGATE_SECURE:
    from django.core.exceptions import ImproperlyConfigured

    _secret = env.str("DJANGO_SECRET_KEY", default="")
    # Django's own bar (security.W009): at least 50 characters, 5 distinct, no generated stub.
    _weak = len(_secret) < 50 or len(set(_secret)) < 5
    if _weak or _secret.startswith(("django-insecure-", "insecure-development-key")):
        raise ImproperlyConfigured(
            "DJANGO_SECURE=true needs DJANGO_SECRET_KEY in the environment: at least 50 random characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')"
        )
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_SECURE=true cannot run with DJANGO_DEBUG=true")
    del _secret, _weak
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=SCHEMAGATE_SECURE)
# Load balancers probe health over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if SCHEMAGATE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SCHEMAGATE_SECURE)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=SCHEMAGATE_SECURE)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=SCHEMAGATE_SECURE)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=SCHEMAGATE_SECURE)
# Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's), or anyone
# could claim https.
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Error reports (DEBUG pages, mails to ADMINS) hide settings that may hold credentials in a URL.
DEFAULT_EXCEPTION_REPORTER_FILTER = "changeapi.api.problems.SecretRedactingReporterFilter"
# --- end of production security ------------------------------------------------------------------

# Integrations: API keys, Idempotency-Key, GitHub, Slack and outbound webhooks.
MIDDLEWARE += ["changeapi.api.idempotency.IdempotencyMiddleware", "changeapi.api.published_schema.PublishedSchemaMiddleware"]
# The published API document, enforced on every request (kept equal to the generated one by CI).
SCHEMAGATE_OPENAPI_PATH = env.str("SCHEMAGATE_OPENAPI_PATH", default=str(BASE_DIR / "openapi.yaml"))
SCHEMAGATE_PUBLIC_URL = env.str("SCHEMAGATE_PUBLIC_URL", default="http://localhost:8000")
SCHEMAGATE_IDEMPOTENCY_TTL_SECONDS = env.int("SCHEMAGATE_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A request still "in flight" after this long is taken to have died, and its key is reusable.
SCHEMAGATE_IDEMPOTENCY_IN_FLIGHT_SECONDS = env.int("SCHEMAGATE_IDEMPOTENCY_IN_FLIGHT_SECONDS", default=600)
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com")
GITHUB_TOKEN = env.str("GITHUB_TOKEN", default="")  # a plain token; or a GitHub App below (needed for check runs)
GITHUB_APP_ID = env.str("GITHUB_APP_ID", default="")
GITHUB_APP_PRIVATE_KEY = env.str("GITHUB_APP_PRIVATE_KEY", default="")  # PEM
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_TIMESTAMP_TOLERANCE_SECONDS = env.int("SLACK_TIMESTAMP_TOLERANCE_SECONDS", default=300)
# Outbound webhooks: private, loopback and link-local destinations are refused unless a network
# listed here (CIDR) contains them.
SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = env.list("SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS", default=[])
SCHEMAGATE_WEBHOOK_MAX_ATTEMPTS = env.int("SCHEMAGATE_WEBHOOK_MAX_ATTEMPTS", default=8)
SCHEMAGATE_WEBHOOK_BACKOFF_SECONDS = env.int("SCHEMAGATE_WEBHOOK_BACKOFF_SECONDS", default=30)
SCHEMAGATE_WEBHOOK_BACKOFF_MAX_SECONDS = env.int("SCHEMAGATE_WEBHOOK_BACKOFF_MAX_SECONDS", default=6 * 3600)
SCHEMAGATE_OUTBOUND_TIMEOUT_SECONDS = env.int("SCHEMAGATE_OUTBOUND_TIMEOUT_SECONDS", default=10)
CELERY_BEAT_SCHEDULE["send-due-webhooks"] = {
    "task": "changeapi.tasks_integrations.webhook_deliveries_due_task",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["purge-idempotency-records"] = {
    "task": "changeapi.tasks_integrations.idempotency_records_purge_task",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["notify-stalled-backfills"] = {
    "task": "approvals.tasks.backfills_stalled_notify_task",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["purge-slack-nonces"] = {
    "task": "approvals.tasks.slack_nonces_purge_task",
    "schedule": 3600.0,
}
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    *SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"],
    "changeapi.api.idempotency.idempotency_schema_hook",
]
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"],
    "WebhookDeliveryStatus": "changeapi.models.WebhookDelivery.Status",
    "DriftCheckStatus": "changeapi.models.DriftCheck.Status",
    "DryRunSchema": "changeapi.models.DryRunSchema",
    "IntegrationProvider": "changeapi.models.ExternalIdentity.Provider",
    "OperationMappingKind": "changeapi.intake.python_source.config.OperationMapping.KINDS",
    "TypeEnum": "changeapi.api.operation_schemas.FIELD_TYPE_CHOICES",
    "SchemaConstraintType": "changeapi.api.schema_snapshots.CONSTRAINT_TYPES",
    "ColumnIdentity": "changeapi.api.schema_snapshots.IDENTITY_KINDS",
    "BackfillState": "approvals.rollout.BackfillState",
}
