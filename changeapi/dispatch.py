"""The one way services start background work: a task by name, sent when the transaction commits.

Services must not import the task modules (tasks import services, so that would be a cycle),
and a job must not start before the rows it reads are committed. Tasks are looked up by name
in Celery's registry, which imports the task modules of every installed app on first use; with
no broker configured Celery runs the task in-process (`task_always_eager`), as on one machine.
"""

from __future__ import annotations

from functools import partial

from celery import current_app
from celery.app.task import Task
from django.db import transaction

BASELINE_BUILD = "changeapi.tasks.baseline_build_task"
DRY_RUN = "changeapi.tasks.dry_run_task"
WEBHOOK_DELIVERY = "changeapi.tasks_integrations.webhook_delivery_task"
# The channels' tasks live in `approvals`, which `changeapi` never imports: found by name.
INTEGRATIONS_REACT = "approvals.tasks.integrations_react_task"
SLACK_INTERACTION = "approvals.tasks.slack_interaction_task"
GITHUB_DELIVERY = "approvals.tasks.github_delivery_task"
BUNDLES_VERIFY_SCHEMA = "approvals.tasks.bundles_verify_schema_task"


def _task(name: str) -> Task:
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def enqueue(name: str, *args: object) -> None:
    """Send the task now (for callers outside a transaction, such as a periodic sweep)."""
    _task(name).delay(*args)


def enqueue_on_commit(name: str, *args: object) -> None:
    """Send the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(enqueue, name, *args))
