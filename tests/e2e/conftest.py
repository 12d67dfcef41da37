"""The Python client generated from the committed openapi.yaml, rebuilt for every test session.

It is generated when this directory's tests are collected, so test modules import it like any
installed client; under pytest-xdist each worker generates its own copy. A warning from the
generator (a schema it cannot map to types) fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# One copy per pytest-xdist worker: the workers collect this directory at the same time.
GENERATED = Path(__file__).resolve().parent / "generated" / os.environ.get("PYTEST_XDIST_WORKER", "main")


def client_generate() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(ROOT / "openapi.yaml"),
            "--config",
            str(Path(__file__).resolve().parent / "openapi-client.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(GENERATED / "schemagate_client"),
            "--overwrite",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"openapi-python-client failed on openapi.yaml:\n{result.stdout}{result.stderr}")


client_generate()
sys.path.insert(0, str(GENERATED))
