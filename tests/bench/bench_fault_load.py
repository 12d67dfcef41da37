"""Benchmark: 200 change requests from 20 concurrent clients while dry-runs run, with faults.

A real gunicorn server (several sync workers) takes the submissions; two real Celery worker
processes on a Redis broker run the dry-runs on shadow clones. Every request carries its own
`Idempotency-Key` and is retried with it on connection errors and 409s, so a retry can never
store a request twice. Faults are injected while the load runs:

- one response in ten is lost (the client hangs up right after sending, then retries);
- one gunicorn worker is SIGKILLed once a third of the requests are in (the master respawns it);
- one Celery worker is SIGKILLed mid dry-run once half are in, and a replacement started; the
  job's lease expires and the reclaim (here called every few seconds, as beat would) requeues it.

At the end it checks that every request was stored exactly once, every dry-run finished, no
5xx was answered, and no shadow clone is left (pg_database and the reaper's registry), and it
prints throughput, latencies, dry-run completion time and those counts. Bounded: a request
budget, a submission deadline and a drain deadline. Loopback only.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_h13 SHADOW_DATABASE_PREFIX=sgh13_ \
     .venv/bin/python -m tests.bench.bench_fault_load [--requests 200] [--clients 20] [--workers 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.bench.support import (
    REPO,
    database_url,
    django_setup,
    figure,
    heading,
    percentile,
    service_database,
    start_worker,
    stop_worker,
    use_broker,
    wait_for,
)

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/8")
LEASE_SECONDS = 5
# A request whose gunicorn worker was killed leaves its key "in flight": reusable after this.
IN_FLIGHT_SECONDS = 15


@dataclass
class Submission:
    number: int
    key: str
    attempts: int = 0
    status: int | None = None
    replayed: bool = False
    change_request: int | None = None
    latency_ms: float = 0.0  # first send to final answer, retries included
    attempt_ms: list[float] = field(default_factory=list)


@dataclass
class Load:
    submissions: list[Submission]
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    lost_on_purpose: int = 0
    seconds: float = 0.0
    started_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(dbname: str, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(dbname),
        "CELERY_BROKER_URL": BROKER,
        "DJANGO_DEBUG": "false",
        "DJANGO_LOG_LEVEL": "ERROR",
        "SCHEMAGATE_IDEMPOTENCY_IN_FLIGHT_SECONDS": str(IN_FLIGHT_SECONDS),
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    command += ["--backlog", "2048", "--log-level", "warning", "--timeout", "60"]
    server = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    try:
        wait_for(lambda: _answers(port), 60, "gunicorn to come up", interval=0.3)
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in result.stdout.split()]


def _seed() -> str:
    """A project with a ready baseline; its owner's API token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.conftest import SHOP_BASELINE
    from tests.factories import UserFactory

    owner = UserFactory(username="bench-owner")
    api = APIClient()
    api.force_authenticate(user=owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json")
    assert baseline.status_code == 202, baseline.content
    return Token.objects.create(user=owner).key


def _body(number: int) -> bytes:
    from tests.conftest import ADD_NOTE_AND_INDEX

    return json.dumps({"project": "shop", "title": f"load {number}", "operations": ADD_NOTE_AND_INDEX}).encode()


def submit_all(port: int, token: str, load: Load, *, clients: int, deadline: float, lose_every: int) -> None:
    """`clients` threads take submissions from a shared list; each is retried with its key
    until it gets an answer that is not a connection error, a 409 or a 5xx."""
    pending = list(reversed(load.submissions))
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Accept": "application/json"}

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with load.lock:
                if not pending:
                    break
                submission = pending.pop()
            body = _body(submission.number)
            first_sent = time.perf_counter()
            while time.monotonic() < deadline:
                submission.attempts += 1
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                sent = time.perf_counter()
                try:
                    conn.request(
                        "POST", "/api/v1/change-requests/", body=body, headers={**headers, "Idempotency-Key": submission.key}
                    )
                    if submission.attempts == 1 and submission.number % lose_every == 0:
                        conn.close()  # the answer is lost: the request may or may not have been stored
                        conn = None
                        with load.lock:
                            load.lost_on_purpose += 1
                        continue
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    with load.lock:
                        load.connection_errors[type(exc).__name__] += 1
                    time.sleep(min(2.0, 0.1 * submission.attempts))
                    continue
                submission.attempt_ms.append((time.perf_counter() - sent) * 1000)
                with load.lock:
                    load.statuses[response.status] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if response.status == 409 or response.status >= 500:
                    time.sleep(min(2.0, 0.2 * submission.attempts))  # in flight elsewhere, or the server failed
                    continue
                submission.status = response.status
                submission.replayed = response.getheader("Idempotent-Replayed") == "true"
                if response.status == 202:
                    submission.change_request = json.loads(data)["id"]
                break
            submission.latency_ms = (time.perf_counter() - first_sent) * 1000
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started


def warm_up(port: int, token: str, requests: int) -> None:
    """Load the code in every gunicorn worker before the clock starts."""
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/v1/change-requests/", headers={"Authorization": f"Token {token}"})
        conn.getresponse().read()
        conn.close()


def _done(load: Load) -> int:
    return sum(1 for s in load.submissions if s.status is not None)


def inject_faults(load: Load, server: subprocess.Popen[bytes], workers: list[subprocess.Popen[bytes]], dbname: str) -> list[str]:
    """Kill a gunicorn worker at a third of the requests and a busy Celery worker at half."""
    from changeapi.models import DryRun

    total = len(load.submissions)
    events: list[str] = []
    wait_for(lambda: _done(load) >= total // 3, 300, "a third of the submissions")
    victims = _children(server.pid)
    if victims:
        os.kill(victims[0], signal.SIGKILL)
        events.append(f"SIGKILL gunicorn worker {victims[0]} after {_done(load)} answers")
    wait_for(lambda: _done(load) >= total // 2, 300, "half of the submissions")
    # Both workers busy: whichever is killed has a job in flight.
    wait_for(lambda: DryRun.objects.filter(status=DryRun.Status.RUNNING).count() >= 2, 120, "both workers to be running")
    victim = workers[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    running = list(DryRun.objects.filter(status=DryRun.Status.RUNNING).values_list("pk", flat=True))
    events.append(f"SIGKILL Celery worker {victim.pid} while dry-runs {running} were running")
    workers.append(start_worker("replacement", dbname=dbname, broker=BROKER, extra_env=_worker_env()))
    events.append("replacement Celery worker started")
    return events


def _worker_env() -> dict[str, str]:
    return {"SCHEMAGATE_DRY_RUN_LEASE_SECONDS": str(LEASE_SECONDS)}


def drain(deadline: float) -> float:
    """Wait for every dry-run to finish, reclaiming expired leases as beat would; seconds waited."""
    from changeapi.models import DryRun
    from changeapi.services.dry_runs import dry_runs_reclaim

    started = time.perf_counter()
    while time.monotonic() < deadline:
        if not DryRun.objects.filter(status__in=[DryRun.Status.QUEUED, DryRun.Status.RUNNING]).exists():
            break
        dry_runs_reclaim()
        time.sleep(2)
    return time.perf_counter() - started


def shadow_inventory() -> dict[str, int]:
    """What the shadow server holds under this run's prefix, by kind, against the reaper's registry.

    Templates and spare clones are kept on purpose (the current baseline's); dry-run clones
    (`dr_`), retired clones waiting for their drop (`rt_`), databases the registry does not know
    and live registry rows without a database are what a run must not leave behind.
    """
    from django.conf import settings

    from changeapi.models import ShadowDatabase
    from changeapi.shadow.provision import databases_with_prefix
    from changeapi.shadow.servers import configured_servers

    prefix = settings.SHADOW_DATABASE_PREFIX
    names = {(server.key, name) for server in configured_servers() for name in databases_with_prefix(server, prefix)}
    live = set(ShadowDatabase.objects.filter(dropped_at__isnull=True).values_list("server", "name"))
    kinds = Counter(name.removeprefix(prefix).split("_", 1)[0] for _, name in names)
    return {
        "templates (kept)": kinds["tpl"],
        "spare clones (kept)": kinds["sp"],
        "dry-run clones": kinds["dr"],
        "retired clones": kinds["rt"],
        "databases unknown to the registry": len(names - live),
        "live registry rows without a database": len(live - names),
    }


def leftover_count(inventory: dict[str, int]) -> int:
    """Databases that should not be there: dry-run clones, retired clones, unknown ones."""
    return inventory["dry-run clones"] + inventory["retired clones"] + inventory["databases unknown to the registry"]


def settle(seconds: float) -> None:
    """Give the workers' post-run chores (drop the retired clone, make the next spare) time to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and leftover_count(shadow_inventory()):
        time.sleep(1)


def verify(load: Load) -> dict[str, Any]:
    from django.db.models import Count

    from changeapi.models import ChangeRequest, DryRun

    per_title = dict(ChangeRequest.objects.values_list("title").annotate(n=Count("id")).values_list("title", "n"))
    wanted = {f"load {s.number}" for s in load.submissions}
    dry_runs = DryRun.objects.filter(revision__change_request__title__in=wanted)
    finished = [d for d in dry_runs.values("status", "created_at", "finished_at", "attempts")]
    completion = [(d["finished_at"] - d["created_at"]).total_seconds() * 1000 for d in finished if d["finished_at"]]
    return {
        "stored": sum(1 for title in wanted if per_title.get(title, 0) >= 1),
        "duplicates": sum(max(0, per_title.get(title, 0) - 1) for title in wanted),
        "missing": sum(1 for title in wanted if per_title.get(title, 0) == 0),
        "answered ids that differ from the stored one": sum(
            1
            for s in load.submissions
            if s.change_request is not None
            and not ChangeRequest.objects.filter(pk=s.change_request, title=f"load {s.number}").exists()
        ),
        "dry-runs": len(finished),
        "dry-run statuses": dict(Counter(d["status"] for d in finished)),
        "dry-runs run more than once (reclaimed)": sum(1 for d in finished if d["attempts"] > 1),
        "completion_ms": completion,
        "last_finished": max((d["finished_at"] for d in finished if d["finished_at"]), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--submit-seconds", type=float, default=180, help="deadline of the submission phase")
    parser.add_argument("--drain-seconds", type=float, default=900, help="deadline for every dry-run to finish")
    parser.add_argument("--lose-every", type=int, default=10, help="lose the first answer of every n-th request")
    parser.add_argument("--no-kills", action="store_true", help="no SIGKILLs, lost answers only")
    args = parser.parse_args()
    os.environ["SCHEMAGATE_RATE_LIMIT"] = "10000000/min"
    os.environ["SCHEMAGATE_SUBMIT_RATE_LIMIT"] = "10000000/min"
    django_setup(eager=True)  # the baseline is built in-process; submissions go through the broker
    import redis
    from django.utils import timezone

    from changeapi.services.shadows import shadows_reap
    from tests.bench.support import drop_shadow_databases

    heading(
        f"Fault load: {args.requests} submissions from {args.clients} clients, gunicorn {args.workers} workers, "
        "2 Celery workers (Redis), loopback"
    )
    redis.Redis.from_url(BROKER).flushdb()
    run = uuid.uuid4().hex[:8]
    load = Load(submissions=[Submission(number=n, key=f"fault-{run}-{n}") for n in range(args.requests)])
    workers: list[subprocess.Popen[bytes]] = []
    with service_database("fault") as dbname:
        try:
            token = _seed()
            use_broker(BROKER)
            workers = [start_worker(f"w{n}", dbname=dbname, broker=BROKER, extra_env=_worker_env()) for n in (1, 2)]
            port = _free_port()
            with gunicorn(dbname, port, args.workers) as server:
                warm_up(port, token, args.workers * 4)
                started = timezone.now()
                deadline = time.monotonic() + args.submit_seconds
                clients = threading.Thread(
                    target=submit_all,
                    args=(port, token, load),
                    kwargs={"clients": args.clients, "deadline": deadline, "lose_every": args.lose_every},
                )
                clients.start()
                events = [] if args.no_kills else inject_faults(load, server, workers, dbname)
                clients.join()
                drained = drain(time.monotonic() + args.drain_seconds)
                settle(60)
                outcome = verify(load)
                before_reaper = shadow_inventory()
                reaped = shadows_reap()
                after_reaper = shadow_inventory()
            _print(load, outcome, events, drained, started, before_reaper, after_reaper, reaped)
        finally:
            for worker in workers:
                stop_worker(worker)
            use_broker(None)
            redis.Redis.from_url(BROKER).flushdb()
            drop_shadow_databases()


def _print(load, outcome, events, drained, started, before_reaper, after_reaper, reaped) -> None:  # noqa: ANN001
    answered = [s for s in load.submissions if s.status is not None]
    attempts = [ms for s in load.submissions for ms in s.attempt_ms]
    fivexx = sum(n for status, n in load.statuses.items() if status >= 500)
    print("\n  faults injected:")
    print(f"    answers lost on purpose (client hung up after sending): {load.lost_on_purpose}")
    for event in events:
        print(f"    {event}")
    print(f"\n  submissions: {len(answered)} of {len(load.submissions)} answered in {load.seconds:.1f} s")
    figure("throughput (answered submissions)", len(answered) / load.seconds, "req/s")
    figure("p50 latency of one HTTP attempt", percentile(attempts, 50))
    figure("p99 latency of one HTTP attempt", percentile(attempts, 99))
    figure("p50 latency per submission, retries included", percentile([s.latency_ms for s in answered], 50))
    figure("p99 latency per submission, retries included", percentile([s.latency_ms for s in answered], 99))
    print(f"  HTTP statuses of all attempts: {dict(sorted(load.statuses.items()))}")
    print(f"  connection errors retried: {dict(load.connection_errors) or 0}")
    print(f"  answered as a replay (Idempotent-Replayed): {sum(1 for s in answered if s.replayed)}")
    print(f"  submissions retried at least once: {sum(1 for s in load.submissions if s.attempts > 1)}")
    print(f"  final statuses: {dict(Counter(s.status for s in load.submissions))}")
    print(f"  5xx answers: {fivexx}")
    print("\n  stored:")
    for name in ("stored", "duplicates", "missing", "answered ids that differ from the stored one"):
        print(f"    {name}: {outcome[name]}")
    print(f"    dry-runs: {outcome['dry-runs']} {outcome['dry-run statuses']}")
    print(f"    dry-runs run more than once (reclaimed): {outcome['dry-runs run more than once (reclaimed)']}")
    if outcome["completion_ms"]:
        figure("p50 dry-run completion (queued -> finished)", percentile(outcome["completion_ms"], 50) / 1000, "s")
        figure("p99 dry-run completion (queued -> finished)", percentile(outcome["completion_ms"], 99) / 1000, "s")
    if outcome["last_finished"]:
        figure(
            "all dry-runs finished after (from the first submission)", (outcome["last_finished"] - started).total_seconds(), "s"
        )
    figure("drain after the last submission", drained, "s")
    print(f"\n  leftovers before the reaper: {before_reaper}")
    print(f"  reaper: dropped {[name for r in reaped for name in r.dropped]}")
    print(f"  leftovers after the reaper: {after_reaper}")
    checks = {
        "every request stored exactly once": outcome["duplicates"] == 0 and outcome["missing"] == 0,
        "no 5xx": fivexx == 0,
        "every dry-run finished, succeeded": outcome["dry-runs"] == len(load.submissions)
        and set(outcome["dry-run statuses"]) == {"succeeded"},
        "no shadow database left once the workers settled": leftover_count(before_reaper) == 0,
        "no shadow database left after the reaper": leftover_count(after_reaper) == 0,
        "no live registry row without its database after the reaper": after_reaper["live registry rows without a database"] == 0,
    }
    print()
    for check, passed in checks.items():
        print(f"  {'OK    ' if passed else 'NOT OK'} {check}")


if __name__ == "__main__":
    main()
