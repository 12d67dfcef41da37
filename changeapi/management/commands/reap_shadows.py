"""`manage.py reap_shadows`: drop the service's finished or abandoned shadow databases now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from changeapi.services.dry_runs import dry_runs_reclaim
from changeapi.services.shadows import shadows_reap


class Command(BaseCommand):
    help = "Requeue dry-runs whose worker was lost, then drop shadow databases no job needs."

    def handle(self, *args: Any, **options: Any) -> None:
        requeued = dry_runs_reclaim()
        if requeued:
            self.stdout.write(f"requeued dry-runs: {', '.join(map(str, requeued))}")
        for result in shadows_reap():
            if result.error:
                self.stderr.write(f"{result.server}: {result.error}")
                continue
            self.stdout.write(f"{result.server}: dropped {len(result.dropped)}, kept {len(result.kept)}")
            for name in result.dropped:
                self.stdout.write(f"  dropped {name}")
