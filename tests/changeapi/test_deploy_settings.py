"""Production settings come from the environment: `check --deploy` is clean with DJANGO_SECURE=true
and a strong secret key, the service refuses to start with a weak one, and plain http on
localhost (tests, the demo) keeps working with the defaults.

Each case loads the settings in a fresh process, as gunicorn or a worker would.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = secrets.token_urlsafe(64)
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECURE": "true",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "schemagate.example.com",
}


def _environment(**overrides: str) -> dict[str, str]:
    """This process's environment without any Django or security setting, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SCHEMAGATE_SECURE"))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return {**env, **overrides}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def _settings(env: dict[str, str], *names: str) -> dict[str, object]:
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = _run(["-c", script], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _environment(**PRODUCTION))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout


def test_check_deploy_names_what_is_missing_without_production_settings():
    env = _environment(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY)

    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


@pytest.mark.parametrize(
    "secret_key",
    [None, "insecure-development-key-change-me-in-production", "short-but-set", "a" * 64, "django-insecure-" + "x1y2z3" * 10],
    ids=["missing", "the-default", "too-short", "too-few-characters", "django-generated-stub"],
)
def test_secure_mode_refuses_to_start_without_a_strong_secret_key(secret_key):
    env = _environment(**{**PRODUCTION, "DJANGO_SECRET_KEY": secret_key or ""})
    if secret_key is None:
        del env["DJANGO_SECRET_KEY"]

    result = _run(["-c", "import django; django.setup()"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr
    if secret_key:
        assert secret_key not in result.stderr


def test_secure_mode_refuses_to_start_with_debug_on():
    result = _run(["-c", "import django; django.setup()"], _environment(**{**PRODUCTION, "DJANGO_DEBUG": "true"}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_secure_mode_turns_on_https_redirect_hsts_and_secure_cookies():
    values = _settings(
        _environment(**PRODUCTION, DJANGO_SECURE_HSTS_SECONDS="600"),
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "X_FRAME_OPTIONS",
        "SECURE_PROXY_SSL_HEADER",
        "DEBUG",
    )

    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_PROXY_SSL_HEADER": None,
        "DEBUG": False,
    }


def test_the_proxy_ssl_header_is_trusted_only_when_asked_for():
    values = _settings(_environment(**PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="true"), "SECURE_PROXY_SSL_HEADER")

    assert values == {"SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]}


def test_in_secure_mode_http_is_redirected_and_https_gets_hsts_but_health_probes_are_not_redirected():
    script = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="schemagate.example.com")
plain = client.get("/api/v1/projects/")
proxied = client.get("/api/v1/projects/", HTTP_X_FORWARDED_PROTO="https")
health = client.get("/healthz")
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location")],
    "proxied": [proxied.status_code, proxied.headers.get("Strict-Transport-Security")],
    "health_redirected": health.status_code in (301, 302),
}))
"""
    env = _environment(**PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="true", SHADOW_SERVERS="")

    result = _run(["-c", script], env)

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["plain"] == [301, "https://schemagate.example.com/api/v1/projects/"]
    assert answers["proxied"] == [401, "max-age=31536000; includeSubDomains; preload"]
    assert answers["health_redirected"] is False


def test_defaults_serve_plain_http_on_localhost(client, settings):
    assert settings.SECURE_SSL_REDIRECT is False
    assert settings.SECURE_HSTS_SECONDS == 0

    response = client.get("/api/v1/projects/")

    assert response.status_code == 401
    assert "Strict-Transport-Security" not in response.headers
