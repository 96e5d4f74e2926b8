"""The HTTP API and its OpenAPI document agree: methods, Allow headers, the one error
shape on every path (the chat UI mounted at / included), documented statuses,
streaming media types and the request-size limits."""

from __future__ import annotations

import pytest
from conftest import API_KEY, make_client
from fastapi.testclient import TestClient

from qa.api import create_app

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def assert_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def documented_methods(spec: dict, path: str) -> set[str]:
    return {m.upper() for m in spec["paths"][path]}


def test_every_undeclared_method_is_405_with_the_full_allow_header(client):
    spec = client.get("/openapi.json").json()
    concrete = {"/v1/documents/{doc_id}": "/v1/documents/yichang.txt"}
    for path in spec["paths"]:
        declared = documented_methods(spec, path)
        for method in METHODS:
            if method in declared:
                continue
            response = client.request(method, concrete.get(path, path))
            assert_shape(response, 405, "method_not_allowed")
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert declared <= allowed <= declared | {"HEAD"}, (method, path, allowed)
    # GET and DELETE are two routes on one path: the header lists both.
    assert client.options("/v1/documents/hubei/xianning.txt").headers["allow"] == "DELETE, GET"


def test_unknown_paths_are_404_in_the_error_shape(client):
    for path in ("/nope", "/v1", "/v1/", "/v1/nope", "/v1/documents/x/../../etc", "/static/x.js"):
        assert_shape(client.get(path), 404, "not_found")
    assert_shape(client.request("TRACE", "/v1/nope"), 404, "not_found")


@pytest.fixture
def with_ui(pipeline):
    """The app as `qa serve` builds it: the chat UI mounted at /."""
    with TestClient(create_app(pipeline.settings.model_copy(update={"api_key": API_KEY}), pipeline)) as client:
        client.app.state.warm_up.join(timeout=120)
        yield client


def test_errors_keep_the_shape_with_the_ui_mounted(with_ui):
    assert with_ui.get("/").status_code == 200  # the UI itself
    for path in ("/nope", "/v1/nope", "/gradio_api/nope", "/assets/nope.js"):
        assert_shape(with_ui.get(path), 404, "not_found")
    for method, path in (("TRACE", "/healthz"), ("TRACE", "/v1/ask"), ("PUT", "/v1/retrieve"),
                         ("POST", "/readyz"), ("PATCH", "/v1/documents/wuhan.txt")):
        response = with_ui.request(method, path)
        assert_shape(response, 405, "method_not_allowed")
        assert response.headers["allow"]
    assert with_ui.post("/v1/retrieve", json={"query": "宜昌"}).status_code == 200  # the API still answers


def test_every_documented_error_has_the_shape_and_an_example(client):
    spec = client.get("/openapi.json").json()
    error_schema = spec["components"]["schemas"]["ErrorResponse"]
    assert error_schema["required"] == ["error"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "default" in responses, (method, path)
            for status, response in responses.items():
                content = response["content"]["application/json"]
                if status == "default" or int(status) >= 400:
                    assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
                    assert set(content["example"]["error"]) == {"code", "message"}, (method, path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's {"detail": ...} 422 is not ours


def test_streaming_responses_are_documented_as_event_streams(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/chat/completions"):
        ok = spec["paths"][path]["post"]["responses"]["200"]["content"]
        assert set(ok) == {"application/json", "text/event-stream"}
        event = ok["text/event-stream"]
        assert event["schema"]["properties"]["data"] == {"type": "string"} and event["example"]
    ask_events = spec["paths"]["/v1/ask"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert ask_events["schema"]["properties"]["event"]["enum"] == ["delta", "final", "done"]


def test_request_schemas_state_what_the_server_refuses(pipeline):
    with make_client(pipeline, max_question_chars=300) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        query = schemas["RetrieveRequest"]["properties"]["query"]
        question = schemas["AskRequest"]["properties"]["question"]
        assert query["minLength"] == 1 and query["pattern"] == r"\S" and query["maxLength"] == 300
        assert question["maxLength"] == 300 and "p{L}" in question["pattern"]
        assert schemas["ChatRequest"]["properties"]["messages"]["contains"]["properties"]["role"] == {"const": "user"}
        # and the server refuses exactly that, with the documented 400
        assert_shape(client.post("/v1/retrieve", json={"query": " \t"}), 400, "invalid_input")
        assert_shape(client.post("/v1/retrieve", json={"query": "宜" * 301}), 400, "invalid_input")
        assert_shape(client.post("/v1/ask", json={"question": "？！…"}), 400, "invalid_input")
        assert client.post("/v1/ask", json={"question": "宜昌?"}).status_code == 200
        chat = {"messages": [{"role": "user", "content": "宜昌?"}, {"role": "user", "content": "!!"}]}
        assert_shape(client.post("/v1/chat/completions", json=chat), 400, "invalid_input")
        chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "宜昌?"}]}]}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
        # JSON types are not coerced: 0 is not false, "5" is not 5; 5.0 is the integer 5
        assert_shape(client.post("/v1/ask", json={"question": "宜昌?", "stream": 0}), 422, "invalid_request")
        assert_shape(client.post("/v1/retrieve", json={"query": "宜昌", "k": "5"}), 422, "invalid_request")
        assert len(client.post("/v1/retrieve", json={"query": "宜昌", "k": 2.0}).json()["hits"]) == 2


def test_body_limits_come_from_starlette_and_keep_the_shape(pipeline):
    with make_client(pipeline, api_key=API_KEY, max_upload_mb=0.05) as client:
        # Declared too large and refused before the handler reads it, even where the
        # handler would have answered otherwise (no key: 401): the 413 wins, shaped.
        body = b"x" * 200_000
        response = client.post("/v1/documents", content=body,
                               headers={"content-type": "multipart/form-data; boundary=b"})
        error = assert_shape(response, 413, "too_large")
        assert "MB" in error["message"]
        big_json = b'{"query": "' + b"a" * (1 << 20) + b'"}'
        error = assert_shape(client.post("/v1/retrieve", content=big_json, headers={"content-type": "application/json"}),
                             413, "too_large")
        assert "1.0 MB" in error["message"]
