"""Benchmark: 50 concurrent clients against the production server set-up, on loopback.

gunicorn serves `config.wsgi` with several sync workers, on PostgreSQL, with a Redis broker (so
a submission only queues its dry-run, as in production; no worker consumes the queue here).
A bounded load generator (threads + http.client, a request budget and a time limit per
scenario) drives three scenarios in turn: a page of change requests, one change request, and a
submission. It prints p50 / p99 latency, throughput and errors for each.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_h9 SHADOW_DATABASE_PREFIX=sgh9_ \
     .venv/bin/python -m tests.bench.bench_api_load [--clients 50] [--requests 3000] [--seconds 20] [--workers 4]
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.bench.support import REPO, database_url, django_setup, figure, heading, percentile, service_database

BROKER = "redis://127.0.0.1:6379/11"
CHANGE = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
            {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"]}},
        ],
    }
]


@dataclass
class Scenario:
    name: str
    method: str
    paths: list[str]
    body: bytes | None = None
    expected: int = 200


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(dbname: str, port: int, workers: int) -> Iterator[None]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(dbname),
        "CELERY_BROKER_URL": BROKER,
        "DJANGO_DEBUG": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("gunicorn did not come up")
        yield
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def drive(port: int, token: str, scenario: Scenario, *, clients: int, budget: int, seconds: float) -> Outcome:
    """`clients` threads share a budget of requests; each stops when it is spent or time is up."""
    outcome = Outcome()
    lock = threading.Lock()
    remaining = [budget]
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    if scenario.body is not None:
        headers["Content-Type"] = "application/json"

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = number
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            path = scenario.paths[i % len(scenario.paths)]
            i += clients
            started = time.perf_counter()
            try:
                conn.request(scenario.method, path, body=scenario.body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    outcome.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                outcome.latencies_ms.append(elapsed)
                if status != scenario.expected:
                    outcome.errors.append(f"HTTP {status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _seed(requests: int) -> tuple[str, list[int]]:
    """A project with a ready baseline and `requests` dry-run change requests; the owner's token."""
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
    ids = []
    for n in range(requests):
        response = api.post(
            "/api/v1/change-requests/", {"project": "shop", "title": f"seed {n}", "operations": CHANGE}, format="json"
        )
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    return Token.objects.create(user=owner).key, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000, help="request budget per scenario")
    parser.add_argument("--seconds", type=float, default=20, help="time limit per scenario")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    args = parser.parse_args()
    os.environ["SCHEMAGATE_RATE_LIMIT"] = "10000000/min"
    os.environ["SCHEMAGATE_SUBMIT_RATE_LIMIT"] = "10000000/min"
    django_setup(eager=True)  # seeding runs its dry-runs in-process; the server gets a broker
    import redis

    from tests.bench.support import drop_shadow_databases

    heading(f"API load: {args.clients} clients, gunicorn {args.workers} workers, loopback")
    with service_database("load") as dbname:
        try:
            token, ids = _seed(20)
            port = _free_port()
            scenarios = [
                Scenario("list (GET /change-requests/?page_size=20)", "GET", ["/api/v1/change-requests/?page_size=20"]),
                Scenario("detail (GET /change-requests/{id}/)", "GET", [f"/api/v1/change-requests/{i}/" for i in ids]),
                Scenario(
                    "submit (POST /change-requests/)",
                    "POST",
                    ["/api/v1/change-requests/"],
                    body=json.dumps({"project": "shop", "title": "load", "operations": CHANGE}).encode(),
                    expected=202,
                ),
            ]
            with gunicorn(dbname, port, args.workers):
                drive(port, token, scenarios[0], clients=args.clients, budget=200, seconds=10)  # warm every worker
                for scenario in scenarios:
                    outcome = drive(port, token, scenario, clients=args.clients, budget=args.requests, seconds=args.seconds)
                    _print(scenario, outcome)
        finally:
            redis.Redis.from_url(BROKER).flushdb()
            drop_shadow_databases()


def _print(scenario: Scenario, outcome: Outcome) -> None:
    print(f"\n  {scenario.name}: {len(outcome.latencies_ms)} requests in {outcome.seconds:.1f} s")
    if outcome.latencies_ms:
        figure("p50 latency", percentile(outcome.latencies_ms, 50))
        figure("p99 latency", percentile(outcome.latencies_ms, 99))
        figure("throughput", len(outcome.latencies_ms) / outcome.seconds, "req/s")
    errors: dict[str, Any] = {}
    for error in outcome.errors:
        errors[error] = errors.get(error, 0) + 1
    print(f"  errors: {len(outcome.errors)} {errors if errors else ''}")


if __name__ == "__main__":
    main()
