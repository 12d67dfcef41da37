#!/usr/bin/env python3
"""Submit the migrations a pull request changes to Schemagate and fail on high-severity findings.

Standard library only, so it runs on any CI image with Python 3.9+. It finds the migration
files (`*/migrations/*.py`) changed between the base ref and HEAD, submits them as one change
request with a project API key, waits for the dry-run and exits with:

    0  no migrations changed, or the dry-run succeeded without high-severity findings
    1  the dry-run failed, or it has findings of severity high (or critical)
    2  Schemagate could not be reached or refused the submission

Environment:
    SCHEMAGATE_URL        e.g. https://schemagate.example.com
    SCHEMAGATE_API_KEY    a project API key with submit_change (sg_...)
    SCHEMAGATE_PROJECT    the project slug
    SCHEMAGATE_TITLE      optional title (defaults to the last commit's subject)
    SCHEMAGATE_TIMEOUT    optional seconds to wait for the dry-run (default 900)

Usage: schemagate_submit.py --base origin/main
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

BLOCKING = {"high", "critical"}


def git(*args: str) -> str:
    # git from PATH, with fixed arguments: this runs in the CI job's own checkout.
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout  # noqa: S603, S607


def changed_migrations(base: str) -> list[str]:
    out = git("diff", "--name-only", "--diff-filter=AMR", f"{base}...HEAD")
    paths = []
    for line in out.splitlines():
        path = PurePosixPath(line.strip())
        if path.suffix == ".py" and path.parent.name == "migrations" and path.name != "__init__.py":
            paths.append(str(path))
    return sorted(paths)


def call(method: str, url: str, key: str, body: dict | None = None, idempotency_key: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - main() allows http(s) only
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if idempotency_key:
        request.add_header("Idempotency-Key", idempotency_key)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - main() allows http(s) only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload or b"{}")
        except ValueError:
            return error.code, {"detail": payload.decode(errors="replace")[:500]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base ref of the pull request, e.g. origin/main")
    args = parser.parse_args()
    url = os.environ["SCHEMAGATE_URL"].rstrip("/")
    if not url.startswith(("https://", "http://")):
        print("SCHEMAGATE_URL must be an http(s) URL", file=sys.stderr)
        return 2
    key = os.environ["SCHEMAGATE_API_KEY"]
    project = os.environ["SCHEMAGATE_PROJECT"]
    timeout = float(os.environ.get("SCHEMAGATE_TIMEOUT", "900"))

    paths = changed_migrations(args.base)
    if not paths:
        print("No migration files changed: nothing to check.")
        return 0
    files = [{"path": path, "content": Path(path).read_text(encoding="utf-8")} for path in paths]
    title = os.environ.get("SCHEMAGATE_TITLE") or git("log", "-1", "--format=%s").strip()
    body = {"project": project, "title": title[:200] or "Migrations", "migration_files": files}
    # The same content submitted again (a re-run of the job) gets the same answer, not a duplicate.
    idempotency_key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    status, change = call("POST", f"{url}/api/v1/change-requests/", key, body, idempotency_key)
    if status != 202:
        print(f"Schemagate refused the submission ({status}): {change.get('detail', change)}", file=sys.stderr)
        return 2
    print(
        f"Submitted {len(paths)} migration file(s) as {change['project']}#{change['number']} ({url}/api/v1/change-requests/{change['id']}/)"
    )

    deadline = time.monotonic() + timeout
    dry_run: dict = {}
    while time.monotonic() < deadline:
        status, dry_run = call("GET", f"{url}/api/v1/dry-runs/{change['latest_dry_run']}/", key)
        if status != 200:
            print(f"Could not read the dry-run ({status}): {dry_run.get('detail', dry_run)}", file=sys.stderr)
            return 2
        if dry_run["status"] in ("succeeded", "failed"):
            break
        time.sleep(5)
    else:
        print("Timed out waiting for the dry-run.", file=sys.stderr)
        return 2

    if dry_run["status"] == "failed":
        print(f"The dry-run failed: {dry_run.get('error') or 'see the report'}")
        return 1
    findings = (dry_run.get("report") or {}).get("findings") or []
    for finding in findings:
        where = f" (statement {finding['statement_index']})" if finding.get("statement_index") is not None else ""
        print(f"[{finding.get('severity')}] {finding.get('code')}: {finding.get('title') or finding.get('message')}{where}")
    blocking = [f for f in findings if f.get("severity") in BLOCKING]
    if blocking:
        print(f"{len(blocking)} high-severity finding(s): failing the job.")
        return 1
    print(f"Dry-run succeeded with {len(findings)} finding(s), none of severity high.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
