"""Schemathesis hooks: every generated request is a new request as far as Idempotency-Key goes.

Generated keys repeat (the coverage phase sends the same boundary values again and again), so
most POSTs would be answered with the 422 for a reused key and never reach the view. Replays
are tested in tests/changeapi; here the generated key gets a unique suffix, which keeps an
invalid key invalid.
"""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, **kwargs):  # noqa: ANN001, ANN003, ANN201
    headers = case.headers or {}
    if isinstance(headers.get("Idempotency-Key"), str):
        headers["Idempotency-Key"] += uuid.uuid4().hex
