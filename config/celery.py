"""The Celery application: a worker process is just another interface to the services."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("schemagate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
@worker_process_init.connect
def _freeze_start_up(**_: object) -> None:
    """What a worker's start-up made lives as long as the process (see `freeze_long_lived`);
    `worker_ready` for the solo pool, `worker_process_init` in each prefork child."""
    from changeapi.gc_pause import freeze_long_lived

    freeze_long_lived()
