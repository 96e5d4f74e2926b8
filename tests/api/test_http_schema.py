"""Property-based run of schemathesis against the app's own OpenAPI schema (in-process ASGI).

Bounded (a few dozen examples per operation) so it finishes well under a minute. The
check is the one that matters at an edge: no generated request, valid or not, gets a
5xx. Writes are open (allow_writes) so uploads and deletions are exercised too; the
corpus and index live in tmp_path.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from qa.api import create_app
from qa.settings import Settings

pytestmark = pytest.mark.server


# The schema is read from an app with no index behind it (serving /openapi.json needs
# none); each test sends its cases to an app over a fresh tiny index in tmp_path.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(embedder="hash", index_dir="/nonexistent/qa-index"), mount_ui=False))


@pytest.fixture
def app(pipeline):
    app = create_app(pipeline.settings.model_copy(update={"allow_writes": True}), pipeline, mount_ui=False)
    with TestClient(app):  # run the warm-up once, so /readyz is 200 rather than 503 "loading"
        app.state.warm_up.join(timeout=120)
    return app


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_server_errors(case, app):
    response = case.call(app=app)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:  # every error is the API's JSON error object
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
