"""`python -m changeapi.demo_server`: the whole service on one machine, with no database server to install.

An embedded PostgreSQL 16 (the `pgserver` package, data in `.demo/pgdata`) holds the
service's own data and is also the shadow server; Celery runs tasks in-process; Django's
development server answers on 127.0.0.1:8000. Settings are read when Django starts, so the
environment is set here first. Ctrl-C stops the web server and then PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import quote

import environ
import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".demo" / "pgdata"
SERVICE_DATABASE = "schemagate"
DEFAULT_ADDRPORT = "127.0.0.1:8000"


def socket_url(socket_dir: Path, dbname: str) -> str:
    """A database URL for a server that listens only on a unix socket.

    django-environ takes a percent-encoded absolute path in the URL's path as the socket
    directory (`HOST`), which psycopg accepts as `host`. The `?host=` query form is not
    enough: it lands in `OPTIONS`, which the shadow-server code does not read.
    """
    return f"postgres://postgres@/{quote(str(socket_dir), safe='')}/{dbname}"


def embedded_postgres_start() -> PostgresServer:
    """Start (or attach to) the embedded server; it stops when this process exits.

    PostgreSQL refuses to run as root; pgserver handles that itself: as root it runs the
    server as a system user `pgserver` it creates, and opens read and traverse permissions
    on the folders above the data directory.
    """
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # pgserver falls back to /tmp, which is fine
    import pgserver

    DATA_DIR.parent.mkdir(exist_ok=True)
    return pgserver.get_server(DATA_DIR, cleanup_mode="stop")


def service_database_ensure(admin_url: str) -> str:
    """Create the service's database if it is missing; return the server's version."""
    cfg = environ.Env.db_url_config(admin_url)
    with psycopg.connect(host=cfg["HOST"], user=cfg["USER"], dbname=cfg["NAME"], autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [SERVICE_DATABASE]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SERVICE_DATABASE)))
        return conn.info.parameter_status("server_version") or "?"


def demo_shadow_servers(admin_url: str, extra: str) -> str:
    """SHADOW_SERVERS for the demo: its embedded PostgreSQL, then the servers of
    DEMO_EXTRA_SHADOW_SERVERS (comma-separated), such as a local MariaDB for MySQL projects."""
    return ",".join([admin_url, *(url.strip() for url in extra.split(",") if url.strip())])


def _port_is_free(addrport: str) -> bool:
    """Checked before PostgreSQL starts: runserver leaves with os._exit on a busy port, skipping cleanup."""
    host, _, port = addrport.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]") or "127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    addrport = argv[0] if argv else DEFAULT_ADDRPORT
    if not _port_is_free(addrport):
        print(f"{addrport} is in use: stop what listens there, or pass another address, e.g. 127.0.0.1:8001", file=sys.stderr)
        return 1
    # Ctrl-C and `kill` both stop the web server and then PostgreSQL, also when started from a
    # script that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    server = embedded_postgres_start()
    socket_dir = Path(server.get_postmaster_info().socket_dir)
    admin_url = socket_url(socket_dir, "postgres")
    version = service_database_ensure(admin_url)

    os.environ["DATABASE_URL"] = socket_url(socket_dir, SERVICE_DATABASE)
    os.environ["SHADOW_SERVERS"] = demo_shadow_servers(admin_url, os.environ.get("DEMO_EXTRA_SHADOW_SERVERS", ""))
    os.environ["DJANGO_DEBUG"] = "true"
    os.environ["CELERY_BROKER_URL"] = ""  # tasks run in-process, at commit of the request
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    print(f"Embedded PostgreSQL {version}: data in {DATA_DIR}, socket in {socket_dir}")
    print(f"  DATABASE_URL={os.environ['DATABASE_URL']}")
    print(
        f"  SHADOW_SERVERS={admin_url}" + (" and DEMO_EXTRA_SHADOW_SERVERS" if os.environ["SHADOW_SERVERS"] != admin_url else "")
    )
    try:
        call_command("migrate", interactive=False, verbosity=1)
        call_command("demo", base_url=f"http://{addrport}")
        call_command("runserver", addrport, use_reloader=False)
    except (KeyboardInterrupt, SystemExit):
        pass  # runserver turns Ctrl-C into SystemExit
    finally:
        print("Stopping the embedded PostgreSQL.", flush=True)
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
