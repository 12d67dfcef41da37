"""A second, throwaway PostgreSQL cluster on loopback that a test may stop and start at will."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)


class SecondPostgres:
    """initdb + pg_ctl as the `postgres` OS user, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="sg-second-pg-", dir="/tmp"))
        shutil.chown(self.directory, "postgres", "postgres")
        _as_postgres(str(BIN / "initdb"), "-D", str(self.directory), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.directory), "-o", options, "-w", "-l", str(self.directory / "log"), "start"
        )

    def stop(self) -> None:
        """An immediate stop, as a crash or a lost machine looks to its clients."""
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.directory), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(BIN / "pg_ctl"), "-D", str(self.directory), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)
