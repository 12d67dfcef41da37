"""One entry point for every intake form: a submission's source in, a Plan out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.migrations.state import ProjectState

from changeapi.intake.errors import IntakeError, Location
from changeapi.intake.operations_json import parse_migration_documents
from changeapi.intake.plan import Plan


def plan_from_source(
    *,
    form: str,
    source: Any,
    base_state: ProjectState | None,
    leaves: dict[str, str] | None,
) -> Plan:
    """Parse a submission of the given form on top of a baseline (state and leaf names)."""
    if form == "operations":
        return parse_migration_documents(
            source,
            base_state=base_state,
            leaves=leaves,
            max_operations=settings.SCHEMAGATE_MAX_OPERATIONS,
        )
    raise IntakeError(f"the {form!r} form is not accepted", Location(pointer="/form"))
