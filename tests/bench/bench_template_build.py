"""Benchmark: building a baseline's template database at 50, 100 and 200 generated models.

The generated baselines are those of `bench_dry_run` (10 apps; per model a unique code, an
indexed name, a foreign key to the app's previous model and one to a hub model; a composite
index added in a second migration per app). Each is read as migration files (parsed, never
imported) and its template is built on the shadow server the way a baseline upload builds it:
`template_build`, which applies the history with the lean, untraced path. Beside it, in the
same run, the obvious way: `CREATE DATABASE` + Django's `migrate` in a fresh process.

Printed per size: the build time, the time per model (flat when the build is linear in the
number of models), the replay's, and the peak RSS of this process so far (VmHWM; the sizes are
built in increasing order, so each figure is the peak of that size's build or a smaller one).

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench SHADOW_DATABASE_PREFIX=sgbench_ \
     .venv/bin/python -m tests.bench.bench_template_build [--rounds 2] [--sizes 50,100,200] [--no-replay]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tests.bench.support import (
    django_setup,
    drop_shadow_databases,
    figure,
    heading,
    median,
    migrate_replay,
    project_on_disk,
    ratio,
    synthetic_baseline,
    timed,
)


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), from /proc."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="template builds per size")
    parser.add_argument("--sizes", default="50,100,200", help="numbers of generated models, increasing")
    parser.add_argument("--no-replay", action="store_true", help="skip the `migrate` replay beside each size")
    args = parser.parse_args()
    django_setup(eager=True)
    from django.conf import settings

    from changeapi.dryrun.run import template_build
    from changeapi.intake.python_source import plan_history, read_migration_file
    from changeapi.shadow.provision import drop_database
    from changeapi.shadow.servers import configured_servers

    heading("template build vs number of models")
    server = configured_servers()[0]
    per_model: dict[int, float] = {}
    try:
        for size in (int(part) for part in args.sizes.split(",")):
            history = synthetic_baseline(models_count=size, apps=10)
            files = [
                read_migration_file(app_label=f.app_label, name=f.name, source=f.content, filename=f"{f.name}.py")
                for f in history.files
            ]
            plan = plan_history(files)
            builds = []
            for round_ in range(args.rounds):
                name = f"{settings.SHADOW_DATABASE_PREFIX}bench_tpl_{size}_{round_}"
                with server.admin_connect() as conn:
                    drop_database(conn, name)
                elapsed, built = timed(lambda name=name, plan=plan: template_build(server=server, name=name, baseline=plan))
                assert built, f"{name} existed already"
                builds.append(elapsed)
                with server.admin_connect() as conn:
                    drop_database(conn, name)
            build_ms = median(builds)
            per_model[size] = build_ms / size
            print(f"\n-- {size} models, {len(history.files)} migrations, {plan.operation_count} operations --")
            figure(f"template build (median of {args.rounds})", build_ms)
            figure("  per model", build_ms / size)
            figure("peak RSS of this process so far", _peak_rss_bytes() / 2**20, "MiB")
            if not args.no_replay:
                with project_on_disk(history) as root:
                    replay = migrate_replay(root, f"{settings.SHADOW_DATABASE_PREFIX}bench_tpl_replay")
                figure("obvious way: createdb + `migrate`", replay.total_ms)
                ratio("replay / template build", replay.total_ms / build_ms, "")
    finally:
        drop_shadow_databases()
    sizes = sorted(per_model)
    if len(sizes) > 1:
        print()
        ratio(f"time per model at {sizes[-1]} / at {sizes[0]} models", per_model[sizes[-1]] / per_model[sizes[0]], "~1x (linear)")


if __name__ == "__main__":
    main()
