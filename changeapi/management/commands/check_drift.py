"""`manage.py check_drift`: make the scheduled drift checks that are due, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from changeapi.tasks import drift_checks_due_task


class Command(BaseCommand):
    help = (
        "Compare the latest schema snapshot of every project whose drift schedule is due with its "
        "current baseline. Beat runs this every minute; without a broker (and so without beat), run it from cron."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        due = drift_checks_due_task()
        self.stdout.write(f"{len(due)} projects due for a drift check (checked now, or queued for a worker with a broker)")
