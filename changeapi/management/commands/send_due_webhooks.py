"""`manage.py send_due_webhooks`: attempt the webhook deliveries whose next attempt is due, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from changeapi.tasks_integrations import webhook_deliveries_due_task


class Command(BaseCommand):
    help = (
        "Attempt every webhook delivery whose retry is due. Beat runs this every minute; without a "
        "broker (and so without beat), run it from cron or retries are never made."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        due = webhook_deliveries_due_task()
        self.stdout.write(f"{len(due)} due webhook deliveries attempted (queued for a worker, with a broker)")
