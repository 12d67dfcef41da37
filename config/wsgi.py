"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from changeapi.gc_pause import freeze_long_lived  # noqa: E402 - once Django is set up

# What start-up made lives as long as the process: no collection needs to walk it again.
freeze_long_lived()
