"""Schemathesis generates requests (valid and invalid) from the OpenAPI schema: none may get a 5xx.

The operations are driven with hypothesis directly (schemathesis' pytest fixture loader does not
support pytest 9 yet).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from pitstop import FeatureStore
from pitstop.serving import create_app
from tests.serving.conftest import build_served_repo


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    root = tmp_path_factory.mktemp("schemathesis")
    build_served_repo(root).close()
    with FeatureStore(root) as store:
        app = create_app(store=store)
        with TestClient(app):  # runs the lifespan: the store and model cache stay open for every case
            assert app.state.service.cache.ready.wait(10)  # else GET /ready may rightly answer 503 "loading"
            yield schemathesis.openapi.from_asgi("/openapi.json", app)


OPERATIONS = ["POST /features", "POST /predict", "POST /push/{source}", "GET /models", "GET /health", "GET /ready",
              "GET /metrics"]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_input_gets_a_server_error(api_schema: schemathesis.BaseSchema, label: str,
                                      mode: schemathesis.GenerationMode) -> None:
    operations = {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in api_schema.get_all_operations())}
    assert set(OPERATIONS) <= set(operations), sorted(operations)
    operation = operations[label]
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        seen.append(response.status_code)

    try:
        run()
    except Exception as exc:
        if "unsatisfiable" in type(exc).__name__.lower() and mode is schemathesis.GenerationMode.NEGATIVE:
            return  # operations without inputs have no invalid requests to generate
        raise
    assert seen and max(seen) < 500
