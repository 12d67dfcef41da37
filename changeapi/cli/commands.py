"""What each subcommand does, as functions of the API and their arguments, returning an exit code.

Results go to stdout (a report, a status line, the verification); progress and warnings go to
stderr, so `schemagate report 7 --format md > comment.md` captures only the report.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from changeapi.cli.service import Api, Unavailable
from changeapi.cli.submission import default_title, submission_body

OK, FAILED, USAGE, UNAVAILABLE = 0, 1, 2, 3
SEVERITIES = ("info", "low", "medium", "high", "critical")
FINISHED = ("succeeded", "failed")
# A change request in one of these states has been decided against, or cannot go on as it is.
REFUSED_STATES = ("rejected", "dry_run_failed", "changes_requested")


@dataclass
class Output:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    def result(self, text: str) -> None:
        print(text, file=self.out)

    def progress(self, text: str) -> None:
        print(text, file=self.err, flush=True)


def at_or_above(findings: list[dict[str, Any]], severity: str | None) -> list[dict[str, Any]]:
    """Findings whose severity is `severity` or worse; none when no threshold is set."""
    if severity is None:
        return []
    floor = SEVERITIES.index(severity)
    return [f for f in findings if f.get("severity") in SEVERITIES and SEVERITIES.index(f["severity"]) >= floor]


def _finding_line(finding: dict[str, Any]) -> str:
    index = finding.get("statement_index")
    where = f" (statement {index + 1})" if isinstance(index, int) else ""
    return f"  {finding.get('severity', '?'):<8} {finding.get('code', '?')} {finding.get('title', '')}{where}"


def wait_for_dry_run(
    api: Api,
    dry_run_id: int,
    output: Output,
    *,
    timeout: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the dry-run until it finishes, saying on stderr how far it got; Unavailable past `timeout`."""
    deadline = clock() + timeout
    said = ""
    while True:
        dry_run = api.call("GET", f"/dry-runs/{dry_run_id}/").json()
        if dry_run["status"] in FINISHED:
            return dry_run  # type: ignore[no-any-return]
        total = dry_run.get("progress_total") or 0
        line = f"dry-run {dry_run_id}: {dry_run['status']}" + (
            f", statement {dry_run.get('progress_done', 0)} of {total}" if total else ""
        )
        if line != said:
            output.progress(line)
            said = line
        if clock() >= deadline:
            raise Unavailable(f"dry-run {dry_run_id} did not finish within {timeout:g} s (still {dry_run['status']})")
        time.sleep(interval)


def _judge(dry_run: dict[str, Any], fail_on: str | None, output: Output) -> int:
    """Print the dry-run's outcome and findings; FAILED when it failed or has findings at/above `fail_on`."""
    if dry_run["status"] == "failed":
        output.result(f"dry-run {dry_run['id']} failed: {dry_run.get('error') or 'see the report'}")
        return FAILED
    findings = (dry_run.get("report") or {}).get("findings") or []
    output.result(f"dry-run {dry_run['id']} succeeded: {len(findings)} finding" + ("" if len(findings) == 1 else "s"))
    for finding in findings:
        output.result(_finding_line(finding))
    blocking = at_or_above(findings, fail_on)
    if blocking:
        output.result(f"{len(blocking)} at or above {fail_on}: failing")
        return FAILED
    return OK


def submit(
    api: Api,
    output: Output,
    *,
    project: str,
    files: list[Path],
    title: str | None,
    description: str,
    wait: bool,
    fail_on: str | None,
    timeout: float,
) -> int:
    body = {"project": project, "title": title or default_title(files), "description": description, **submission_body(files)}
    # The same files submitted again (a re-run CI job) get the first answer, not a second change request.
    key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    change = api.call("POST", "/change-requests/", body=body, headers={"Idempotency-Key": key}).json()
    output.result(f"change request {change['id']} ({change['project']}#{change['number']}): {change['status']}")
    output.progress(f"{api.url}/api/v1/change-requests/{change['id']}/")
    if not (wait or fail_on) or change.get("latest_dry_run") is None:
        return OK
    return _judge(wait_for_dry_run(api, change["latest_dry_run"], output, timeout=timeout), fail_on, output)


def status(api: Api, output: Output, *, change_request: int, as_json: bool) -> int:
    change = api.call("GET", f"/change-requests/{change_request}/").json()
    if as_json:
        output.result(json.dumps(change, indent=2))
    else:
        revision = change.get("latest_revision") or {}
        line = f"change request {change['id']} ({change['project']}#{change['number']}) {change['title']!r}: {change['status']}"
        line += f"; revision {revision.get('number', '?')}, dry-run {change.get('latest_dry_run')}"
        output.result(line)
    return FAILED if change["status"] in REFUSED_STATES else OK


def _latest_dry_run(api: Api, change_request: int) -> int:
    change = api.call("GET", f"/change-requests/{change_request}/").json()
    if change.get("latest_dry_run") is None:
        raise Unavailable(f"change request {change_request} has no dry-run yet")
    return int(change["latest_dry_run"])


def report(api: Api, output: Output, *, change_request: int, form: str, fail_on: str | None) -> int:
    dry_run_id = _latest_dry_run(api, change_request)
    dry_run = api.call("GET", f"/dry-runs/{dry_run_id}/").json()
    if form == "md":
        text = api.call(
            "GET", f"/dry-runs/{dry_run_id}/report.md", accept="*/*"
        ).body.decode()  # the endpoint negotiates no text/markdown renderer
        output.out.write(text)
    else:
        output.result(json.dumps(dry_run.get("report"), indent=2))
    if dry_run["status"] == "failed":
        return FAILED
    return FAILED if at_or_above((dry_run.get("report") or {}).get("findings") or [], fail_on) else OK


def approve(api: Api, output: Output, *, change_request: int, comment: str) -> int:
    change = api.call("GET", f"/change-requests/{change_request}/").json()
    revision = (change.get("latest_revision") or {}).get("id")
    body = {"decision": "approve", "revision": revision, "comment": comment}
    review = api.call("POST", f"/change-requests/{change_request}/reviews/", body=body).json()
    after = api.call("GET", f"/change-requests/{change_request}/").json()
    output.result(
        f"{review['reviewer']} approved revision {review['revision_number']} of change request {change_request}: {after['status']}"
    )
    return OK


def bundle_verify(api: Api, output: Output, *, archive: Path) -> int:
    data = archive.read_bytes()
    result = api.call("POST", "/bundles/verify/", data=data, content_type="application/gzip").json()
    if result["valid"]:
        output.result(
            f"OK {archive.name}: bundle {result['bundle']} of {result['project']}, signature valid, "
            f"{result['files_checked']} files match the manifest"
        )
        return OK
    output.result(f"INVALID {archive.name}")
    for problem in result.get("problems") or []:
        output.result(f"  {problem.get('file') or '(archive)'}: {problem.get('problem')}")
    return FAILED
