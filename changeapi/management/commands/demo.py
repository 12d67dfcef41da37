"""`manage.py demo`: users, tokens, a project and a ready baseline to try the API with.

Idempotent: running it again keeps what exists, repairs what is missing (a permission, a
token, a baseline whose template failed to build) and prints the same tokens.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from changeapi.audit import AuditContext
from changeapi.models import Baseline, Project
from changeapi.permissions import PROJECT_PERMISSIONS, REVIEW, SUBMIT, VIEW, project_perms
from changeapi.services.baselines import baseline_build, baseline_create
from changeapi.services.projects import project_create, project_member_set
from changeapi.shadow.servers import ShadowServerUnavailable, configured_servers
from changeapi.types import User

PROJECT_SLUG = "shop"

# Who the demo users are: (username, role shown to the reader, project permissions).
MEMBERS: list[tuple[str, str, list[str]]] = [
    ("alice", "author", [SUBMIT, VIEW]),
    ("bob", "reviewer", [REVIEW, VIEW]),
]
OWNER = "admin"

# The production schema of the demo shop: what the change requests are reviewed against.
SHOP_BASELINE: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "name": "0001_initial",
        "operations": [
            {
                "op": "CreateModel",
                "name": "Customer",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "email", "field": {"type": "EmailField", "max_length": 254, "unique": True}},
                    {"name": "name", "field": {"type": "CharField", "max_length": 200}},
                    {"name": "created_at", "field": {"type": "DateTimeField", "auto_now_add": True}},
                ],
            },
            {
                "op": "CreateModel",
                "name": "Order",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "total", "field": {"type": "IntegerField"}},
                    {"name": "status", "field": {"type": "CharField", "max_length": 16, "default": "new"}},
                    {"name": "placed_at", "field": {"type": "DateTimeField", "db_index": True}},
                    {"name": "customer", "field": {"type": "ForeignKey", "to": "shop.Customer", "on_delete": "CASCADE"}},
                ],
                "options": {
                    "constraints": [{"kind": "check", "name": "order_total_non_negative", "condition": {"total__gte": 0}}],
                },
            },
        ],
    }
]

WALKTHROUGH_HINTS = """\
  # alice submits a change: a nullable column and an index on shop_order
  curl -s -X POST $SG/change-requests/ -H "Authorization: Token $ALICE" -H 'Content-Type: application/json' -d '{
    "project": "shop", "title": "Order notes", "operations": [{"app_label": "shop", "operations": [
      {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": true}},
      {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"]}}]}]}'
  # the dry-run report: SQL, lock modes, rewrites, scans, timings (latest_dry_run from the answer above)
  curl -s $SG/dry-runs/<latest_dry_run>/ -H "Authorization: Token $ALICE"
  # bob approves the revision he reviewed (latest_revision.id)
  curl -s -X POST $SG/change-requests/<id>/reviews/ -H "Authorization: Bearer $BOB" -H 'Content-Type: application/json' \\
    -d '{"decision": "approve", "revision": <revision id>}'
  # admin seals a release bundle and downloads it
  curl -s -X POST $SG/bundles/ -H "Authorization: Token $ADMIN" -H 'Content-Type: application/json' \\
    -d '{"project": "shop", "change_requests": [<id>]}'
  curl -s -OJ $SG/bundles/<bundle id>/download/ -H "Authorization: Token $ADMIN\""""


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, admin) with API tokens, the project 'shop' and its baseline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the API is served, for the printed hints.")

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        engine_version = _shadow_server_version()
        owner = _user(OWNER)
        context = AuditContext(user=owner, via="demo")
        project = Project.objects.filter(slug=PROJECT_SLUG).first()
        if project is None:
            project = project_create(
                creator=owner, slug=PROJECT_SLUG, name="Shop", engine_version=engine_version, context=context
            )
        users = {OWNER: owner}
        for username, _role, permissions in MEMBERS:
            user = users[username] = _user(username)
            if project_perms(user, project) != set(permissions):
                project_member_set(project=project, user=user, permissions=permissions, context=context)
        baseline = _ready_baseline(project=project, owner=owner, context=context)
        tokens = {name: Token.objects.get_or_create(user=user)[0].key for name, user in users.items()}
        passwords = {name: _new_password(user, staff=name == OWNER) for name, user in users.items()}
        self._print_summary(project=project, baseline=baseline, tokens=tokens, passwords=passwords, base_url=base_url.rstrip("/"))

    def _print_summary(
        self, *, project: Project, baseline: Baseline, tokens: dict[str, str], passwords: dict[str, str], base_url: str
    ) -> None:
        roles = {name: (role, ", ".join(perms)) for name, role, perms in MEMBERS}
        roles[OWNER] = ("owner", ", ".join(PROJECT_PERMISSIONS))
        api = f"{base_url}/api/v1"
        out = self.stdout.write
        out(self.style.SUCCESS("Schemagate demo data is ready."))
        out("")
        out(f"  project  {project.slug} (PostgreSQL {project.engine_version}), baseline v{baseline.version}: Customer, Order")
        for name in ("alice", "bob", OWNER):
            role, perms = roles[name]
            out(f"  {name:<6}  {role:<8}  token {tokens[name]}  password {passwords[name]}  ({perms})")
        out("")
        out("Copy these into a shell, then follow the walkthrough in README.md:")
        out("")
        out(f"  export SG={api}")
        out(f"  export ALICE={tokens['alice']} BOB={tokens['bob']} ADMIN={tokens[OWNER]}")
        out("")
        out(WALKTHROUGH_HINTS)
        out("")
        out(f"  API docs: {api}/docs/   OpenAPI schema: {api}/schema/")
        out(f"  In a browser: sign in at {api}/auth/login/ (the passwords above; new ones each run), then open {api}/projects/")
        out(f"  Admin: {base_url}/admin/ as {OWNER}")


def _shadow_server_version() -> int:
    """The demo project declares the major version its dry-runs will really run on."""
    servers = configured_servers()
    if not servers:
        raise CommandError("SHADOW_SERVERS is empty: the demo needs a PostgreSQL shadow server")
    try:
        return servers[0].server_version()
    except ShadowServerUnavailable as exc:
        raise CommandError(f"{exc} (start it, or run `make demo`, which embeds one)") from exc


def _user(username: str) -> User:
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    return user


def _new_password(user: User, *, staff: bool = False) -> str:
    """A fresh random password for a demo user, printed once, so a person can sign in to the
    browsable API (and, for the owner, the admin); tokens stay what scripts use."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_staff = user.is_superuser = staff
    user.save(update_fields=["password", "is_staff", "is_superuser"])
    return password


def _ready_baseline(*, project: Project, owner: User, context: AuditContext) -> Baseline:
    """The project's latest baseline, created or rebuilt until its template database is ready.

    With Celery eager (no broker) the template is built when `baseline_create` commits; with a
    broker a worker builds it, and building it here as well is harmless (the build is idempotent).
    """
    baseline = project.baselines.order_by("-version").first()
    if baseline is None:
        baseline = baseline_create(project=project, author=owner, form="operations", source=SHOP_BASELINE, context=context)
    baseline.refresh_from_db()
    if baseline.status != Baseline.Status.READY:
        baseline = baseline_build(baseline_id=baseline.pk)
    if baseline.status != Baseline.Status.READY:
        raise CommandError(f"baseline v{baseline.version} of {project.slug} is {baseline.status}: {baseline.error}")
    return baseline
