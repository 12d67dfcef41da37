"""A bundle's post-deploy verification as Markdown: the summary of its GitHub check run, and
`GET /bundles/{id}/verification.md` for anywhere else a person reads it."""

from __future__ import annotations

from typing import Any

from approvals.models import BundleVerification, ReleaseBundle
from changeapi.dryrun.render.markdown import SEVERITY_MARK

MAX_ROWS = 200  # a check run's summary holds 65,535 characters; the API lists every difference


def _cell(text: object, limit: int = 300) -> str:
    value = " ".join(str(text if text is not None else "").split()).replace("|", "\\|")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _difference(d: dict[str, Any]) -> str:
    where = f"{d['table']}." if d.get("table") and d["kind"] in ("column", "constraint") else ""
    severity = SEVERITY_MARK.get(d["severity"], d["severity"])
    return (
        f"| {severity} | {d['kind']} `{_cell(where + d['name'], 120)}` | {d['status'].replace('_', ' ')} "
        f"| {_cell(d['detail'])} | {_cell(d['consequence'])} |"
    )


def bundle_verification_markdown(*, bundle: ReleaseBundle, public_url: str) -> str:
    """The outcome of the bundle's verification: verified, the objects production has
    otherwise, or that it has not been verified yet, with how to check again."""
    heading = f"### Schemagate verification: bundle {bundle.number} of {bundle.project.slug}"
    verification: BundleVerification | None = getattr(bundle, "verification", None)
    recheck = (
        "Check again by uploading a new schema snapshot of production, or with "
        f"`POST {public_url.rstrip('/')}/api/v1/bundles/{bundle.pk}/verify/` naming a snapshot."
    )
    if verification is None:
        state = "marked applied" if bundle.applied_at is not None else "not marked applied yet"
        return f"{heading}: not verified\n\nThe bundle is {state} and no schema snapshot has been compared with it.\n"
    snapshot = f"schema snapshot {verification.snapshot_id}, compared {verification.verified_at:%Y-%m-%d %H:%M} UTC"
    if verification.status == BundleVerification.Status.VERIFIED:
        return (
            f"{heading}: ✅ verified\n\nProduction has the schema the bundle leaves, object by object ({snapshot}, "
            f"by {verification.verified_by.get_username()}).\n"
        )
    differences: list[dict[str, Any]] = verification.differences
    count = len(differences)
    lines = [
        f"{heading}: ❌ production differs",
        "",
        f"{count} {'object differs' if count == 1 else 'objects differ'} from the schema the bundle leaves ({snapshot}, "
        f"by {verification.verified_by.get_username()}):",
        "",
        "| Severity | Object | Status | Detail | What it means |",
        "|---|---|---|---|---|",
        *(_difference(d) for d in differences[:MAX_ROWS]),
    ]
    if count > MAX_ROWS:
        lines.append(f"\n… and {count - MAX_ROWS} more, listed at {public_url.rstrip('/')}/api/v1/bundles/{bundle.pk}/")
    return "\n".join([*lines, "", recheck]) + "\n"
