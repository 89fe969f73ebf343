"""Fuzz the app's OpenAPI schema with schemathesis (in-process ASGI, the hashing embedder) as an
admin, a reader and an anonymous caller: whatever the parameters, no answer is a 5xx."""

from __future__ import annotations

import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_auth import corpus  # noqa: E402,F401  (the module-scoped index, keys and app)

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it

EXAMPLES = 25  # per operation and caller; bounded so the whole file runs in well under a minute


@pytest.mark.parametrize("user", ["root", "alice", None])
def test_no_operation_answers_5xx(corpus, user):  # noqa: F811
    schema = schemathesis.openapi.from_asgi("/openapi.json", corpus.client.app)
    headers = {"Authorization": f"Bearer {corpus.keys[user]}"} if user else {}
    started, failures = time.monotonic(), []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")
            assert response.status_code < 500

        run()
    assert not failures
    assert time.monotonic() - started < 60
