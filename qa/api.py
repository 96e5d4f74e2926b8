"""The HTTP API: a thin FastAPI shell over :class:`qa.pipeline.Pipeline`.

``qa serve`` runs :func:`serve`; tests and embedding applications call
:func:`create_app`. Everything the API answers comes from the pipeline; this module
only validates input, enforces limits and write access, schedules work off the
event loop and maps library errors (:class:`qa.errors.QAError`) to HTTP statuses in
one place. Every error has the shape ``{"error": {"code": ..., "message": ...}}``.

>>> from fastapi.testclient import TestClient
>>> client = TestClient(create_app(Settings(index_dir="/nonexistent/index", embedder="hash"), mount_ui=False))
>>> client.get("/healthz").json()
{'status': 'ok'}
>>> r = client.get("/readyz"); r.status_code, r.json()["error"]["code"]
(503, 'no_index')
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Sequence

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api_models import (
    AnswerOut,
    AskRequest,
    ChatRequest,
    ChatResponse,
    DocumentList,
    DocumentOut,
    ErrorResponse,
    Health,
    ModelList,
    Ready,
    RetrieveRequest,
    RetrieveResponse,
    UserMessage,
    WriteResponse,
    has_word,
)
from qa.errors import Conflict, InputError, NotFoundError, PermissionDenied, QAError, Unauthorized
from qa.ingest import SUPPORTED_SUFFIXES
from qa.pipeline import Pipeline
from qa.serving import Writer, serving_pipeline
from qa.settings import Settings
from qa.types import Answer, Document, Turn

log = logging.getLogger("qa.api")

MODEL_ID = "qa-gov"
# JSON bodies are questions and filters; a megabyte is far more than any legitimate one.
MAX_JSON_BYTES = 1 << 20
# Multipart framing around the file (boundaries, part headers) on top of max_upload_mb.
MULTIPART_SLACK = 64 << 10


class TooLarge(StarletteHTTPException):
    """The request body is over the limit (an HTTPException so FastAPI's own body
    reader re-raises it instead of turning it into a generic 400)."""

    def __init__(self, limit: int):
        super().__init__(413, detail=f"the request body is larger than {limit / 1048576:.1f} MB; "
                                     "send a smaller file or raise --max-upload-mb")


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 422: "invalid_request", 429: "too_many_requests"}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _error_doc(description: str, code: str, message: str) -> dict[str, Any]:
    """One documented error response: the error shape and an example of it."""
    return {"model": ErrorResponse, "description": description,
            "content": {"application/json": {"example": {"error": {"code": code, "message": message}}}}}


# Every status a route can answer, each with the error shape and an example; routes
# pick theirs. "default" covers what no route means to answer (a 500 is a bug).
_DOCS: dict[int | str, dict[str, Any]] = {
    400: _error_doc("Invalid input: a body that is not JSON (`invalid_json`), a question or query that breaks "
                    "the rules stated in the request schema, such as the server's question limit (`invalid_input`)",
                    "invalid_input", "the question is empty (type a question, e.g. 宜昌打造多少分钟急救圈?)"),
    401: _error_doc("Missing or wrong API key", "unauthorized",
                    "this endpoint needs the API key (send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`)"),
    403: _error_doc("Writes are disabled on this server", "forbidden", "uploads and deletions are disabled on this "
                    "server (start it with --api-key KEY ...)"),
    404: _error_doc("Unknown document", "not_found", "no document 'x.txt' in the index (list them with GET "
                                                      "/v1/documents)"),
    409: _error_doc("The write conflicts with the index: a document of that name exists (pass replace=true), "
                    "the last document cannot be deleted, or the index was built with another embedder",
                    "conflict", "a document named 'report.txt' is already indexed (pass ?replace=true to "
                                "overwrite it, or upload it under another name)"),
    413: _error_doc("The request body is over the limit (1 MB for JSON, --max-upload-mb for uploads)",
                    "too_large", "the request body is over this endpoint's limit of 1.0 MB; send a smaller body or file"),
    422: _error_doc("The body does not match the request schema", "invalid_request",
                    "k: Input should be less than or equal to 100"),
    503: _error_doc("No index loaded yet (or still loading)", "no_index",
                    "no index found in ./index (build one with `qa index [FOLDER]`)"),
    "default": _error_doc("Unexpected server error (the traceback is in the server log)", "internal_error",
                          "internal error; the traceback is in the server log"),
}


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: _DOCS[status] for status in (*statuses, "default")}


READ_ERRORS = error_docs(503)
QUERY_ERRORS = error_docs(400, 413, 422, 503)
_UPLOAD_400 = _error_doc(
    "The upload cannot be indexed: not multipart with a file field, an unusable name, a file type other than "
    f"{', '.join(SUPPORTED_SUFFIXES)}, an empty, binary, corrupt or scanned file (`invalid_input`), or a .docx/.pdf "
    "over a decompression cap (`unpack_limit`)", "unpack_limit",
    "bomb.docx cannot be indexed: the archive unpacks to more than 64 MB (the cap on unpacked bytes) (re-save the "
    "document without embedded archives or oversized media, or split it)")


ASK_SSE_EXAMPLE = (
    'event: delta\ndata: {"text": "根据《推进市域治理现代化》(2022-01-14,宜昌市):“打造中心城区“10分钟”急救圈。”[1]"}\n\n'
    'event: final\ndata: {"question": "宜昌打造多少分钟急救圈?", "answer": "根据…[1]", "refused": false, '
    '"citations": [{"n": 1, "doc_id": "yichang.txt", "title": "推进市域治理现代化", "start": 120, "end": 151, '
    '"quote": "打造中心城区“10分钟”急救圈。"}], "hits": []}\n\n'
    'event: done\ndata: {}\n\n'
)


def _sse_event_schema(events: list[str], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "required": ["data"],
            "properties": {"event": {"type": "string", "enum": events}, "data": {"type": "string"},
                           "id": {"type": "string"}, "retry": {"type": "integer", "minimum": 0}}}


CHAT_SSE_EXAMPLE = (
    'data: {"id": "chatcmpl-1f0c", "object": "chat.completion.chunk", "created": 1760000000, "model": "qa-gov", '
    '"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null, '
    '"logprobs": null}]}\n\n'
    'data: {"id": "chatcmpl-1f0c", "object": "chat.completion.chunk", "created": 1760000000, "model": "qa-gov", '
    '"choices": [{"index": 0, "delta": {"content": "Yichang: 10 minutes in the central city [1]."}, '
    '"finish_reason": null, "logprobs": null}]}\n\n'
    'data: {"id": "chatcmpl-1f0c", "object": "chat.completion.chunk", "created": 1760000000, "model": "qa-gov", '
    '"choices": [{"index": 0, "delta": {"citations": [], "refused": false}, "finish_reason": "stop", '
    '"logprobs": null}]}\n\n'
    'data: [DONE]\n\n'
)


# ---------------------------------------------------------------- answer pieces

# A piece ends after sentence punctuation (plus any closing quotes and [n] markers
# that follow it) or a line break; an English full stop counts only before a space,
# so "3.5" and "No. 2" inside numbers are not split.
_PIECE = re.compile(r".*?(?:[。！？!?；;]+[”’」』）)]*(?:\s*\[\d+\])*\s*|\.(?=\s|$)(?:\s*\[\d+\])*\s*|\n+|$)", re.S)


def answer_pieces(text: str) -> list[str]:
    """Split an answer into sentence-sized pieces for streaming; they join back to ``text``.

    >>> answer_pieces("宜昌打造10分钟急救圈[1]。武汉为12分钟。[2] Done.")
    ['宜昌打造10分钟急救圈[1]。', '武汉为12分钟。[2] ', 'Done.']
    """
    return [m.group(0) for m in _PIECE.finditer(text) if m.group(0)]


# ---------------------------------------------------------------- routing and error shape


class MethodCheck:
    """A path the API serves but not with this method: 405 with an ``Allow`` header
    listing every method of that path (a path served by several routes, such as GET
    and DELETE on /v1/documents/{doc_id}, lists them all), and an unknown /v1 path:
    404, both in the API's error shape, before the chat UI mounted at / could claim
    them. Everything else goes on to the router."""

    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api  # read at request time: routes and the UI mount are added after this

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed: set[str] = set()
        for route in self.api.router.routes:
            if isinstance(route, Mount):
                continue  # the UI at / matches every path
            match, _ = route.matches(scope)
            if match == Match.FULL:
                await self.app(scope, receive, send)
                return
            if match == Match.PARTIAL:
                allowed |= set(getattr(route, "methods", None) or ())
        path = scope["path"]
        if allowed:
            response = error_response(405, "method_not_allowed", f"{scope['method']} is not allowed on {path}; "
                                      f"allowed: {', '.join(sorted(allowed))}; see /docs",
                                      {"Allow": ", ".join(sorted(allowed))})
        elif path == "/v1" or path.startswith("/v1/"):
            response = error_response(404, "not_found", f"no route {path}; the API is described at /docs")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


# The chat UI's own protocol (its JavaScript reads gradio's error bodies); its routing
# errors (404, 405) are reshaped like everyone's.
_UI_PROTOCOL = "/gradio_api/"


class ErrorShape:
    """The outermost layer: any error response that is not yet in the API's shape
    (Starlette's plain-text 413, the UI's ``{"detail": ...}`` 404s) is rewritten to
    ``{"error": {"code", "message"}}``, keeping its status and headers such as
    ``Allow``. Responses in the shape, and all 1xx-3xx ones, pass untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def shaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                status = message["status"]
                ui = scope["path"].startswith(_UI_PROTOCOL) and status not in (404, 405)
                if status >= 400 and not ui:
                    start = message  # held back until the body is complete
                    return
            elif message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await _send_shaped(scope, start, b"".join(body), send)
                return
            await send(message)

        await self.app(scope, receive, shaping_send)


def _in_shape(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and {"code", "message"} <= set(body["error"]))


def _error_message(scope: Scope, status: int, raw: bytes) -> str:
    path, method = scope["path"], scope["method"]
    if status == 404:
        return f"no route {path}; the API is described at /docs"
    if status == 405:
        return f"{method} is not allowed on {path}; see /docs"
    if status == 413:
        limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        size = f" of {limit / 1048576:.1f} MB" if isinstance(limit, int) else ""
        return f"the request body is over this endpoint's limit{size}; send a smaller body or file"
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        detail = raw.decode("utf-8", errors="replace").strip()
    return str(detail)[:500] if detail else f"HTTP {status} on {path}"


async def _send_shaped(scope: Scope, start: Message, raw: bytes, send: Send) -> None:
    status = start["status"]
    if _in_shape(raw):
        await send(start)
        await send({"type": "http.response.body", "body": raw})
        return
    code = _STATUS_CODES.get(status, "internal_error" if status >= 500 else "error")
    body = json.dumps({"error": {"code": code, "message": _error_message(scope, status, raw)}},
                      ensure_ascii=False).encode("utf-8")
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return ErrorShape(super().build_middleware_stack())


# ---------------------------------------------------------------- app


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None, *, mount_ui: bool = True) -> FastAPI:
    """The ASGI application (``mount_ui=False`` leaves out the chat UI at ``/``)."""
    settings = settings or (pipeline.settings if pipeline is not None else Settings())
    pipeline = pipeline or serving_pipeline(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load the index and the model off the event loop so /healthz answers at once
        # and /readyz turns 200 only when the first query will be fast.
        if app.state.warm_up is None:  # once per app, even if the lifespan is entered again
            thread = threading.Thread(target=_warm_up, args=(pipeline,), name="qa-warm-up", daemon=True)
            app.state.warm_up = thread
            thread.start()
        yield

    upload_bytes = int(settings.max_upload_mb * 1048576)
    app = _App(
        title="qa-gov",
        version="0.1.0",
        summary="Question answering over Chinese government documents, with exact citations.",
        description=(
            "Retrieve passages, ask questions (JSON, Server-Sent Events or the OpenAI chat-completions "
            "format) and manage the indexed documents.\n\n"
            "Write endpoints (upload, delete) need the server's API key in `X-API-Key` or "
            "`Authorization: Bearer` when it was started with `--api-key`; without a key they are "
            "refused unless it was started with `--allow-writes`.\n\n"
            "Every error, on any path and method, is `{\"error\": {\"code\", \"message\"}}`. "
            "Request bodies are capped: 1 MB for JSON, the upload limit (`--max-upload-mb`) plus multipart "
            "framing for uploads (413 `too_large`)."
        ),
        lifespan=lifespan,
        # Uploads (and the chat UI's own uploads) may be this large; JSON routes set 1 MB.
        max_body_size=upload_bytes + MULTIPART_SLACK,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.warm_up = None
    _install_error_handlers(app)
    app.add_middleware(MethodCheck, api=app)
    origins = settings.cors_list()
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if "*" in origins else origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key"],
            max_age=600,
        )
    app.state.writer = Writer(settings.writer_niceness)
    _add_routes(app, settings, pipeline, app.state.writer)
    if mount_ui and not _mount_ui(app, pipeline, settings):
        app.add_api_route("/", _fallback_home, methods=["GET"], include_in_schema=False)
    _state_question_limit(app, settings.max_question_chars)
    return app


def _state_question_limit(app: FastAPI, limit: int) -> None:
    """Write this server's question limit (a setting) into the OpenAPI document as
    the maxLength of every question field, so the document states what the server accepts."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemas = spec.get("components", {}).get("schemas", {})
            for model, field in (("RetrieveRequest", "query"), ("AskRequest", "question"), ("TextPart", "text")):
                prop = schemas.get(model, {}).get("properties", {}).get(field)
                if prop is not None:
                    prop["maxLength"] = min(limit, prop.get("maxLength", limit))
            content = schemas.get("UserMessage", {}).get("properties", {}).get("content", {})
            for option in content.get("anyOf", []):
                if option.get("type") == "string":
                    option["maxLength"] = min(limit, option.get("maxLength", limit))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _warm_up(pipeline: Pipeline) -> None:
    try:
        pipeline.warm_up()
    except QAError as exc:  # no index yet: /readyz reports it
        log.warning("not ready: %s", exc)
    except Exception:  # a broken index must not kill the server; /readyz reports it
        log.exception("warm-up failed")


def _mount_ui(app: FastAPI, pipeline: Pipeline, settings: Settings) -> bool:
    try:
        from qa.ui.app import build_ui
    except ImportError as exc:
        log.info("chat UI not available (%s); serving a link to /docs at /", exc)
        return False
    try:
        import gradio

        blocks = build_ui(pipeline, settings)
        blocks.queue(default_concurrency_limit=4)  # as `qa ui` does
        gradio.mount_gradio_app(app, blocks, path="/", show_error=True, footer_links=["settings"],
                                max_file_size=int(settings.max_upload_mb * 1048576))
    except Exception:  # the API must come up even if the UI cannot
        log.exception("could not mount the chat UI; serving a link to /docs at /")
        return False
    return True


def _fallback_home() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>qa-gov</title>"
        "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        "<h1>qa-gov</h1><p>Question answering over Chinese government documents.</p>"
        "<p>The HTTP API is documented at <a href='/docs'>/docs</a> "
        "(OpenAPI schema: <a href='/openapi.json'>/openapi.json</a>).</p></body></html>"
    )


# ---------------------------------------------------------------- errors


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return error_response(exc.http_status, exc.code, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and all(e.get("type") == "json_invalid" for e in errors):
            detail = errors[0].get("ctx", {}).get("error", "")
            return error_response(400, "invalid_json", f"the body is not valid JSON ({detail}); send a JSON object")
        return error_response(422, "invalid_request", describe_validation_errors(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}; the API is described at /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        elif exc.status_code == 413 and not isinstance(exc, TooLarge):
            # Starlette's request-size limit (max_body_size), hit while the body was read.
            message = _error_message(request.scope, 413, b"")
        code = _STATUS_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; the traceback is in the server log")


def describe_validation_errors(errors: Sequence[dict]) -> str:
    """One readable line from pydantic's error list.

    >>> describe_validation_errors([{"loc": ("body", "k"), "msg": "Input should be less than or equal to 100"}])
    'k: Input should be less than or equal to 100'
    """
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(x) for x in error.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


# ---------------------------------------------------------------- auth

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's --api-key")
_bearer = HTTPBearer(auto_error=False, description="The server's --api-key as a bearer token")


def require_write(
    request: Request,
    key: str | None = Security(_key_header),
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> None:
    """Write access: the configured API key (compared in constant time), or writes
    explicitly opened with ``allow_writes`` when no key is configured."""
    settings: Settings = request.app.state.settings
    if settings.api_key:
        given = key or (bearer.credentials if bearer else None)
        if not given:
            raise Unauthorized("this endpoint needs the API key",
                               hint="send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`")
        if not hmac.compare_digest(given.encode("utf-8"), settings.api_key.encode("utf-8")):
            raise Unauthorized("the API key is not valid", hint="use the key the server was started with")
        return
    if not settings.allow_writes:
        raise PermissionDenied(
            "uploads and deletions are disabled on this server",
            hint="start it with --api-key KEY (or QA_API_KEY=KEY) to accept writes carrying that key, "
                 "or with --allow-writes (QA_ALLOW_WRITES=1) to accept them from anyone",
        )


# ---------------------------------------------------------------- routes


def _add_routes(app: FastAPI, settings: Settings, pipeline: Pipeline, writer: Writer) -> None:
    def check_text(text: str, what: str) -> str:
        if not text.strip():
            raise InputError(f"the {what} is empty", hint="send a question, e.g. 宜昌打造多少分钟急救圈?")
        if len(text) > settings.max_question_chars:
            raise InputError(
                f"the {what} is {len(text)} characters long; the limit is {settings.max_question_chars}",
                hint="shorten it to the essential question",
            )
        return text

    @app.get("/healthz", response_model=Health, tags=["health"], responses=error_docs())
    def healthz() -> dict:
        """The process is alive (it may still be loading the index)."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Ready, tags=["health"], responses=error_docs(503))
    def readyz(request: Request) -> Any:
        """200 when the index is loaded and queries can be answered, else 503 with the reason."""
        thread = request.app.state.warm_up
        if thread is not None and thread.is_alive():
            return error_response(503, "loading", "the index and model are still loading; retry shortly")
        try:
            count = len(pipeline.documents())
        except QAError as exc:
            return error_response(503, exc.code, str(exc))
        return {"status": "ready", "documents": count}

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=QUERY_ERRORS, tags=["query"],
              max_body_size=MAX_JSON_BYTES)
    async def retrieve(body: RetrieveRequest) -> JSONResponse:
        """The best passages for a query: the same objects as `qa search --json`."""
        query = check_text(body.query, "query")
        k, mode, filters = body.k or settings.k, body.mode or settings.mode, body.to_filters()
        vector = None
        if pipeline.search_is_light() and mode != "bm25":
            # Only the embedding (model or query cache) goes to a worker thread; the
            # rest, ~0.4 ms of numpy, runs here. Handing it to a thread as well cost
            # more than the work: the thread switches and the GIL passing back and
            # forth at every numpy call doubled the server's CPU per request.
            vector = await run_in_threadpool(pipeline.query_vector, query)
        if (vector is not None or mode == "bm25") and pipeline.search_is_light():
            hits = pipeline.search(query, k=k, mode=mode, filters=filters, query_vector=vector)
        else:  # nothing loaded yet, a new version to load, or a large index: all on a thread
            hits = await run_in_threadpool(pipeline.search, query, k, mode, filters)
        return JSONResponse({"query": body.query, "hits": [h.to_json() for h in hits]})

    @app.post(
        "/v1/ask",
        response_model=AnswerOut,
        responses={**QUERY_ERRORS, 200: {"content": {"text/event-stream": {
            "schema": _sse_event_schema(
                ["delta", "final", "done"],
                "One Server-Sent Event (OpenAPI 3.1: the schema describes each event). The stream is `delta` "
                "events whose data is `{\"text\": ...}` (the answer piece by piece), one `final` event whose "
                "data is the whole answer object (as without streaming), then `done` with data `{}`."),
            "example": ASK_SSE_EXAMPLE}},
            "description": "The answer as JSON, or with stream=true as Server-Sent Events"}},
        tags=["query"],
        max_body_size=MAX_JSON_BYTES,
    )
    async def ask(body: AskRequest) -> Any:
        """Answer with cited sentences: the same object as `qa ask --json`.

        With `"stream": true` the reply is Server-Sent Events: `delta` events with the
        answer text piece by piece (`{"text": ...}`), one `final` event with the whole
        answer object (citations and hits), then `done`."""
        question = check_text(body.question, "question")
        history = [t.to_turn() for t in body.history]
        if body.stream and pipeline.generating():
            # Retrieval and input errors surface here, as a normal error reply; the
            # LLM is read as the response streams, one verified sentence at a time.
            events = await run_in_threadpool(pipeline.ask_stream, question, history, body.k or settings.k,
                                             body.to_filters())
            return _sse(_generated_ask_events(events))
        answer = await run_in_threadpool(pipeline.ask, question, history, body.k or settings.k, body.to_filters())
        if not body.stream:
            return JSONResponse(answer.to_json())
        return _sse(_ask_events(answer))

    @app.post(
        "/v1/chat/completions",
        response_model=ChatResponse,
        responses={**QUERY_ERRORS, 200: {"content": {"text/event-stream": {
            "schema": _sse_event_schema(
                ["message"],
                "One Server-Sent Event in OpenAI's format (unnamed events, read as `message`): the data of each "
                "is a `chat.completion.chunk` object, the last chunk's delta carrying `citations` and `refused`; "
                "the stream ends with the data `[DONE]`."),
            "example": CHAT_SSE_EXAMPLE}},
            "description": "The completion as JSON, or with stream=true as Server-Sent Events"}},
        tags=["openai"],
        max_body_size=MAX_JSON_BYTES,
    )
    async def chat_completions(body: ChatRequest) -> Any:
        """OpenAI-compatible chat completions: the last user message is the question,
        the earlier user/assistant messages are the history. The reply content carries
        [n] markers; `message.citations` (and the last streamed chunk's
        `delta.citations`) the cited sentences."""
        for message in body.messages:
            if isinstance(message, UserMessage):
                check_text(message.text(), "user message")
                if not has_word(message.text()):
                    raise InputError("a user message has no letter or digit",
                                     hint="ask in Chinese or English, e.g. 宜昌打造多少分钟急救圈?")
        question, history = chat_question(body)
        model = body.model or MODEL_ID
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream and pipeline.generating():
            events = await run_in_threadpool(pipeline.ask_stream, question, history, body.k or settings.k,
                                             body.filters.to_filters() if body.filters else None)
            return _sse(_generated_chat_chunks(events, completion_id, created, model), done_marker=True)
        answer = await run_in_threadpool(pipeline.ask, question, history, body.k or settings.k,
                                         body.filters.to_filters() if body.filters else None)
        if body.stream:
            return _sse(_chat_chunks(answer, completion_id, created, model), done_marker=True)
        return JSONResponse({
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer, "refusal": None,
                            "citations": [c.to_json() for c in answer.citations], "refused": answer.refused,
                            "generator": answer.generator, "dropped": [d.to_json() for d in answer.dropped]},
                "finish_reason": "stop",
                "logprobs": None,
            }],
        })

    @app.get("/v1/models", response_model=ModelList, tags=["openai"], responses=error_docs())
    def models() -> dict:
        """The one model name this server answers to (for OpenAI clients that list models)."""
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": MODEL_ID}]}

    @app.get("/v1/documents", response_model=DocumentList, responses=READ_ERRORS, tags=["documents"])
    def list_documents() -> JSONResponse:
        """The indexed documents with their metadata and passage counts."""
        counts = pipeline.chunk_counts()
        docs = sorted(pipeline.documents(), key=lambda d: d.doc_id)
        return JSONResponse({"documents": [_summary(d, counts) for d in docs]})

    @app.get("/v1/documents/{doc_id:path}", response_model=DocumentOut, responses=error_docs(404, 503),
             tags=["documents"])
    def get_document(doc_id: str) -> JSONResponse:
        """One document: its full text (all offsets point into it), metadata and sections."""
        if doc_id not in _doc_ids(pipeline):
            raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with GET /v1/documents")
        doc = pipeline.document(doc_id)
        return JSONResponse({
            **_summary(doc, pipeline.chunk_counts()),
            "text": doc.text,
            "sections": [{"heading": s.heading, "start": s.start, "end": s.end} for s in doc.sections],
            "content_hash": doc.content_hash,
        })

    @app.post(
        "/v1/documents",
        status_code=201,
        response_model=WriteResponse,
        responses={**error_docs(400, 401, 403, 409, 413, 422, 503), 400: _UPLOAD_400},
        tags=["documents"],
        dependencies=[Depends(require_write)],
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": f"A document whose file name ends in one of "
                                                   f"{', '.join(SUPPORTED_SUFFIXES)}, at most the server's "
                                                   f"--max-upload-mb (20 MB by default)"}},
        }}}}},
    )
    async def upload_document(
        request: Request,
        replace: bool = Query(False, description="Overwrite a document of the same name instead of refusing"),
    ) -> JSONResponse:
        """Add a document: multipart field `file`; it is indexed before the reply.

        The file name is reduced to a plain name inside the corpus folder (the reply's
        `doc_id`); a name that is already indexed is refused with 409 unless
        `replace=true`. Readers keep being answered from the previous index until the
        new one is swapped in."""
        # The body is read here, after the write check, so a refused client cannot make
        # the server spool a large file first.
        limit = int(settings.max_upload_mb * 1048576)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise InputError("send the document as multipart/form-data with a field named file",
                             hint="curl -F file=@report.txt ...")
        form = await request.form(max_files=1, max_fields=10)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InputError("the form has no file field", hint="name the multipart field file: -F file=@report.txt")
            if upload.size is not None and upload.size > limit:
                raise TooLarge(limit)
            content = await upload.read(limit + 1)
            if len(content) > limit:
                raise TooLarge(limit)
            # The duplicate-name check runs in the writer, under the write lock, with the write itself.
            name, report = await writer.run(pipeline.add_document, upload.filename or "", content, replace)
        finally:
            await form.close()
        return JSONResponse({"doc_id": name, "index": _report(report)}, status_code=201)

    @app.delete("/v1/documents/{doc_id:path}", response_model=WriteResponse,
                responses=error_docs(401, 403, 404, 409, 503), tags=["documents"],
                dependencies=[Depends(require_write)])
    async def delete_document(doc_id: str) -> JSONResponse:
        """Remove a document from the corpus folder and the index."""
        docs = await run_in_threadpool(_doc_ids, pipeline)
        if doc_id not in docs:
            raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with GET /v1/documents")
        if len(docs) == 1:
            # Re-indexing an empty folder fails after the file is gone; refuse up front.
            # 409: the request is well formed, the index's state does not allow it.
            raise Conflict("this is the only indexed document", hint="upload another document before deleting it")
        report = await writer.run(pipeline.delete_document, doc_id)
        return JSONResponse({"doc_id": doc_id, "index": _report(report)})


def _doc_ids(pipeline: Pipeline) -> set[str]:
    return {d.doc_id for d in pipeline.documents()}


def _summary(doc: Document, counts: dict[str, int]) -> dict:
    return {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "region": doc.region,
            "source": doc.source, "chunks": counts.get(doc.doc_id, 0)}


def _report(report: Any) -> dict:
    return {"added": list(report.added), "changed": list(report.changed), "deleted": list(report.deleted),
            "unchanged": len(report.unchanged), "chunks": report.chunks, "embedded_texts": report.embedded_texts}


def chat_question(body: ChatRequest) -> tuple[str, list[Turn]]:
    """The last user message is the question; earlier user/assistant messages the history.

    >>> q, h = chat_question(ChatRequest(messages=[{"role": "system", "content": "be brief"},
    ...     {"role": "user", "content": "宜昌?"}, {"role": "assistant", "content": "10分钟[1]"},
    ...     {"role": "user", "content": "武汉呢?"}]))
    >>> q, [t.role for t in h]
    ('武汉呢?', ['user', 'assistant'])
    """
    last = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
    if last is None:
        raise InputError("the messages contain no user message", hint='add {"role": "user", "content": "<question>"}')
    history = [Turn(role=m.role, content=m.text()) for m in body.messages[:last]
               if m.role in ("user", "assistant") and m.text().strip()]
    return body.messages[last].text(), history


# ---------------------------------------------------------------- server-sent events


def _sse_event(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n").encode("utf-8")


def _sse(events: Iterable[bytes], done_marker: bool = False) -> StreamingResponse:
    def body() -> Iterator[bytes]:
        yield from events
        if done_marker:
            yield b"data: [DONE]\n\n"

    # no-cache and X-Accel-Buffering keep proxies from holding the stream back.
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _ask_events(answer: Answer) -> Iterator[bytes]:
    for piece in answer_pieces(answer.answer):
        yield _sse_event({"text": piece}, "delta")
    yield _sse_event(answer.to_json(), "final")
    yield _sse_event({}, "done")


def _chunk_maker(completion_id: str, created: int, model: str) -> Callable[..., bytes]:
    """One ``chat.completion.chunk`` SSE event per call, for one streamed completion."""
    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return _sse_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                           "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                        "logprobs": None}]})
    return chunk


def _chat_chunks(answer: Answer, completion_id: str, created: int, model: str) -> Iterator[bytes]:
    chunk = _chunk_maker(completion_id, created, model)
    yield chunk({"role": "assistant", "content": ""})
    for piece in answer_pieces(answer.answer):
        yield chunk({"content": piece})
    yield chunk({"citations": [c.to_json() for c in answer.citations], "refused": answer.refused}, "stop")


def _generated_ask_events(events: Iterator) -> Iterator[bytes]:
    """SSE of a generated answer: a ``delta`` per verified sentence as it passes,
    then ``final`` (with ``generator`` and ``dropped``) and ``done``."""
    from qa.generate import Final

    for event in events:
        if isinstance(event, Final):
            yield _sse_event(event.answer.to_json(), "final")
        else:
            yield _sse_event({"text": event.text}, "delta")
    yield _sse_event({}, "done")


def _generated_chat_chunks(events: Iterator, completion_id: str, created: int, model: str) -> Iterator[bytes]:
    from qa.generate import Final

    chunk = _chunk_maker(completion_id, created, model)
    yield chunk({"role": "assistant", "content": ""})
    for event in events:
        if isinstance(event, Final):
            answer = event.answer
            yield chunk({"citations": [c.to_json() for c in answer.citations], "refused": answer.refused,
                         "generator": answer.generator, "dropped": [d.to_json() for d in answer.dropped]}, "stop")
        else:
            yield chunk({"content": event.text})


# ---------------------------------------------------------------- serve


def serve(settings: Settings) -> int:
    """Run the API (and the chat UI at /) with uvicorn until interrupted."""
    import uvicorn

    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key and settings.allow_writes:
        log.warning("writes are open to anyone who can reach %s:%s; set --api-key", settings.host, settings.port)
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            access_log=settings.access_log, timeout_graceful_shutdown=10, server_header=False)
    uvicorn.Server(config).run()
    return 0
