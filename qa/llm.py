"""Chat models that write answers: a small interface, backends chosen by name.

The one backend, ``openai``, speaks the OpenAI chat-completions protocol that vLLM,
Ollama, llama.cpp's server and the hosted services all offer
(``POST {llm_url}/chat/completions``, streamed as Server-Sent Events). Everything
that can go wrong on the wire (refused connection, timeout, 429, 5xx, a body that
is not a completion) is raised as one :class:`~qa.errors.LLMError`, so the caller
(:mod:`qa.generate`) has one thing to catch and fall back on. The API key travels
only in the ``Authorization`` header: it is a ``SecretStr`` in the settings and is
never part of a message, a log line or a ``repr``.

>>> chat = OpenAIChat("http://127.0.0.1:9/v1", "qwen2.5-7b-instruct", api_key="sk-secret", timeout=5)
>>> chat.name, "sk-secret" in repr(chat)
('llm:qwen2.5-7b-instruct', False)
>>> get_chat_model("claude", "http://x/v1", "m")
Traceback (most recent call last):
...
qa.errors.ConfigError: unknown LLM backend 'claude' (choose one of: openai)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

from qa.errors import ConfigError, LLMError

log = logging.getLogger("qa.llm")

# Deterministic answers: the same question gets the same wording (and the same
# verification outcome) every time.
TEMPERATURE = 0.0
# The prompt asks for one to four cited sentences: under 300 tokens in Chinese or
# English; a model that runs on is cut here.
MAX_TOKENS = 300


@dataclass(frozen=True)
class Message:
    """One chat message of a prompt."""

    role: str  # system | user | assistant
    content: str

    def to_json(self) -> dict:
        return {"role": self.role, "content": self.content}


class ChatModel(Protocol):
    """What :mod:`qa.generate` needs from a model: text, whole or in pieces."""

    name: str  # "llm:<model>", as answers report it

    def complete(self, messages: Sequence[Message]) -> str: ...

    def stream(self, messages: Sequence[Message]) -> Iterator[str]: ...


class OpenAIChat:
    """An OpenAI-compatible chat-completions endpoint (``url`` ends in ``/v1``)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 max_tokens: int = MAX_TOKENS):
        self.url = url.rstrip("/")
        self.model = model
        self.name = f"llm:{model}"
        self._api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"OpenAIChat({self.where()!r}, {self.model!r})"

    def where(self) -> str:
        """The endpoint for log lines: scheme, host and path, never credentials."""
        import httpx

        try:
            return str(httpx.URL(self.url).copy_with(username=None, password=None, query=None))
        except Exception:  # an unparsable URL is reported as such, not echoed
            return "<invalid URL>"

    def _request(self, messages: Sequence[Message], stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": [m.to_json() for m in messages],
            "temperature": TEMPERATURE,
            "max_tokens": self.max_tokens,
            "stream": stream,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def complete(self, messages: Sequence[Message]) -> str:
        """The whole reply text."""
        return "".join(self._pieces(messages, stream=False))

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply text in pieces as the server sends them."""
        return self._pieces(messages, stream=True)

    def _pieces(self, messages: Sequence[Message], stream: bool) -> Iterator[str]:
        import httpx

        deadline = time.monotonic() + self.timeout
        timeout = httpx.Timeout(self.timeout)
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                with client.stream("POST", f"{self.url}/chat/completions", headers=self._headers(),
                                   json=self._request(messages, stream)) as response:
                    _check_status(response.status_code, self)
                    kind = response.headers.get("content-type", "")
                    if stream and "text/event-stream" in kind:
                        for line in response.iter_lines():
                            if time.monotonic() > deadline:
                                raise LLMError(f"the LLM at {self.where()} took longer than {self.timeout:g} s",
                                               hint="raise --llm-timeout or use a faster model")
                            piece = _stream_line(line)
                            if piece is None:
                                break
                            if piece:
                                yield piece
                        return
                    body = response.read()  # a server that ignores stream=true answers in one piece
                    if time.monotonic() > deadline:
                        raise LLMError(f"the LLM at {self.where()} took longer than {self.timeout:g} s",
                                       hint="raise --llm-timeout or use a faster model")
                    yield _completion_text(body)
        except httpx.TimeoutException as exc:
            raise LLMError(f"the LLM at {self.where()} did not answer within {self.timeout:g} s",
                           hint="raise --llm-timeout or check the server") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"the LLM at {self.where()} is unreachable ({type(exc).__name__})",
                           hint="check --llm-url and that the server is running") from exc


def _check_status(status: int, chat: OpenAIChat) -> None:
    if status == 429:
        raise LLMError(f"the LLM at {chat.where()} is rate-limiting requests (HTTP 429)",
                       hint="lower the request rate or raise the server's limits")
    if status in (401, 403):
        raise LLMError(f"the LLM at {chat.where()} refused the credentials (HTTP {status})",
                       hint="check --llm-api-key")
    if status >= 400:
        raise LLMError(f"the LLM at {chat.where()} answered HTTP {status}",
                       hint="check --llm-url, --llm-model and the server's log")


def _completion_text(body: bytes) -> str:
    """The message text of a (non-streamed) chat completion.

    >>> _completion_text(b'{"choices": [{"message": {"role": "assistant", "content": "10 minutes [1]."}}]}')
    '10 minutes [1].'
    >>> _completion_text(b'<html>oops</html>')
    Traceback (most recent call last):
    ...
    qa.errors.LLMError: the LLM's reply is not a chat completion (JSON expected) (check that --llm-url ends in /v1 and points at an OpenAI-compatible server)
    """
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMError("the LLM's reply is not a chat completion (JSON expected)",
                       hint="check that --llm-url ends in /v1 and points at an OpenAI-compatible server") from exc
    if not isinstance(content, str):
        raise LLMError("the LLM's reply has no text content", hint="check --llm-model")
    return content


def _stream_line(line: str) -> str | None:
    """The text piece of one Server-Sent Events line ("" for none, None at the end).

    >>> _stream_line('data: {"choices": [{"delta": {"content": "10分钟"}}]}'), _stream_line("data: [DONE]")
    ('10分钟', None)
    >>> _stream_line(": keep-alive"), _stream_line('data: {"choices": [{"delta": {"role": "assistant"}}]}')
    ('', '')
    """
    line = line.strip()
    if not line.startswith("data:"):
        return ""  # comments, event names, blank separators
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    try:
        data = json.loads(payload)
        if "error" in data and not data.get("choices"):
            raise LLMError(f"the LLM reported an error while streaming: {str(data['error'])[:200]}",
                           hint="check the server's log")
        choices = data.get("choices") or []
        if not choices:
            return ""
        piece = (choices[0].get("delta") or {}).get("content")
    except (ValueError, AttributeError, TypeError) as exc:
        raise LLMError("the LLM's stream is not chat-completion chunks",
                       hint="check that --llm-url points at an OpenAI-compatible server") from exc
    return piece if isinstance(piece, str) else ""


BACKENDS = {"openai": OpenAIChat}


def get_chat_model(backend: str, url: str, model: str | None, api_key: str | None = None,
                   timeout: float = 30.0) -> ChatModel:
    """The chat model of ``backend`` (see :data:`BACKENDS`) at ``url``."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown LLM backend {backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend](url, model or "default", api_key=api_key, timeout=timeout)


def chat_model_from_settings(settings) -> ChatModel | None:
    """The configured chat model, or None when no ``llm_url`` is set (extractive only)."""
    if not settings.llm_url:
        return None
    raw = settings.llm_api_key  # a SecretStr; a plain str when set through model_copy(update=...)
    key = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
    return get_chat_model(settings.llm_backend, settings.llm_url, settings.llm_model, key, settings.llm_timeout)
