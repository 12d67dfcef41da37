"""Arguments, configuration from the environment, and the exit code a CI job reads."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from changeapi.cli import commands
from changeapi.cli.commands import FAILED, OK, SEVERITIES, UNAVAILABLE, USAGE, Output
from changeapi.cli.service import Api, Refused, Unavailable
from changeapi.cli.submission import InputError

EPILOG = """\
configuration (environment):
  SCHEMAGATE_URL     the service, e.g. https://schemagate.example.com (default http://127.0.0.1:8000)
  SCHEMAGATE_TOKEN   a user's API token or a project API key (sg_...), sent as a Bearer token

exit codes:
  0  done: submitted, approved, verified; no finding at or above --fail-on
  1  a finding at or above --fail-on, a failed dry-run, a change request rejected (or with
     changes requested, or whose dry-run failed), or a bundle that does not verify
  2  usage or input error: bad arguments, unreadable files, or a request the service refused
     (4xx: invalid submission, unknown change request, missing permission or token)
  3  server or network error: unreachable, a 5xx answer, or --wait past --timeout

examples:
  schemagate submit --project shop shop/migrations/0002_order_note.py --wait --fail-on high
  schemagate status 42
  schemagate report 42 --format md > comment.md
  schemagate approve 42 --comment "small table: fine"
  schemagate bundle verify shop-bundle-1.tar.gz
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="schemagate",
        description="Submit Django schema changes to Schemagate, wait for their dry-run, read reports, approve, verify bundles.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = sub.add_parser("submit", help="submit migration files, models.py files or JSON operations as a change request")
    submit.add_argument("--project", required=True, help="the project's slug")
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE", help="<app>/migrations/*.py, <app>/models.py, or *.json")
    submit.add_argument("--title", help="title of the change request (default: from the file names)")
    submit.add_argument("--description", default="", help="description of the change request")
    submit.add_argument("--wait", action="store_true", help="wait for the dry-run and print its findings")
    submit.add_argument(
        "--fail-on", choices=SEVERITIES, help="exit 1 when a finding is of this severity or worse (implies --wait)"
    )
    submit.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the dry-run (default 900)")

    status = sub.add_parser("status", help="a change request's status")
    status.add_argument("change_request", type=int, metavar="ID")
    status.add_argument("--format", choices=("text", "json"), default="text")

    report = sub.add_parser("report", help="the latest dry-run report of a change request")
    report.add_argument("change_request", type=int, metavar="ID")
    report.add_argument("--format", choices=("md", "json"), default="md")
    report.add_argument("--fail-on", choices=SEVERITIES, help="exit 1 when a finding is of this severity or worse")

    approve = sub.add_parser("approve", help="approve the latest revision of a change request")
    approve.add_argument("change_request", type=int, metavar="ID")
    approve.add_argument("--comment", default="")

    bundle = sub.add_parser("bundle", help="release bundles")
    bundle_sub = bundle.add_subparsers(dest="bundle_command", required=True, metavar="COMMAND")
    verify = bundle_sub.add_parser("verify", help="verify a bundle archive's checksums and signature with the service")
    verify.add_argument("archive", type=Path, metavar="FILE")
    return root


def run(args: argparse.Namespace, api: Api, output: Output) -> int:
    if args.command == "submit":
        return commands.submit(
            api,
            output,
            project=args.project,
            files=args.files,
            title=args.title,
            description=args.description,
            wait=args.wait,
            fail_on=args.fail_on,
            timeout=args.timeout,
        )
    if args.command == "status":
        return commands.status(api, output, change_request=args.change_request, as_json=args.format == "json")
    if args.command == "report":
        return commands.report(api, output, change_request=args.change_request, form=args.format, fail_on=args.fail_on)
    if args.command == "approve":
        return commands.approve(api, output, change_request=args.change_request, comment=args.comment)
    return commands.bundle_verify(api, output, archive=args.archive)


def main(argv: Sequence[str] | None = None, output: Output | None = None) -> int:
    """The console script `schemagate`: parse, run one command, and map every failure to its exit code."""
    output = output or Output()
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return OK if exit_.code in (0, None) else USAGE
    try:
        api = Api(os.environ.get("SCHEMAGATE_URL") or "http://127.0.0.1:8000", token=os.environ.get("SCHEMAGATE_TOKEN") or None)
        code = run(args, api, output)
    except (InputError, ValueError, OSError) as error:
        output.progress(f"schemagate: {error}")
        return USAGE
    except Refused as refused:
        output.progress(f"schemagate: the service refused the request: {refused}")
        return USAGE
    except Unavailable as error:
        output.progress(f"schemagate: {error}")
        return UNAVAILABLE
    except KeyboardInterrupt:
        return UNAVAILABLE
    for warning in api.warnings:
        output.progress(f"schemagate: the service warns: {warning}")
    return code if code in (OK, FAILED) else USAGE


if __name__ == "__main__":
    sys.exit(main())
