"""[1] The patch point: ``Client.send`` / ``AsyncClient.send`` of httpx and httpx2.

``send`` is the one method every request of a client goes through once per
logical call (auth, redirects and transport retries happen inside it), for
every transport (default, ``MockTransport``, ASGI/WSGI) and for clients built
before ``instrument()``, since it is looked up on the class. Requests that are
not LLM calls pay one dict lookup. ``build_request`` is wrapped too, to keep the object an
SDK handed over as ``json=`` in the request's extensions: the request is then read from
that object, in time that does not depend on the prompt, instead of from the encoded
bytes. The send wrapper always asks the original for a
streamed response. When the caller streams, an observer goes on ``response.stream``;
when it asked for ``stream=False``, the wrapper reads the body itself, exactly as
httpx does, and hands the parser the decoded body whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context

from otel_llm import _state
from otel_llm._begin import begin, call_context, headers_arrived, read_whole
from otel_llm._decoding import decoded
from otel_llm._finish import finish
from otel_llm._guard import guarded
from otel_llm._observe import make_observers
from otel_llm._types import LLMCall
from otel_llm.adapters import match

__all__ = ["HttpxModule", "patch", "patched_modules", "unpatch"]

_ORIGINAL = "__otel_llm_original__"
JSON_EXTENSION = "otel_llm.json"
"""Request extension: the object httpx encoded as the body (``build_request(json=...)``)."""


class _Client(Protocol):
    send: Callable[..., Any]


class HttpxModule(Protocol):
    """What we use of ``httpx`` (or ``httpx2``): the two clients' ``send`` and the byte
    stream bases an observer must also be."""

    __name__: str
    Client: type[_Client]
    AsyncClient: type[_Client]
    SyncByteStream: type
    AsyncByteStream: type


@dataclass(frozen=True, slots=True)
class _Patched:
    module: HttpxModule
    send: Callable[..., Any]
    asend: Callable[..., Any]
    own_build: tuple[bool, bool]  # whether Client / AsyncClient defined build_request itself


_patched: dict[str, _Patched] = {}


def patched_modules() -> list[str]:
    return sorted(_patched)


def _begin(state: _state.State, request: Any) -> LLMCall | None:
    """httpx's request in ``_begin.begin``'s terms; None means "not ours"."""
    url = request.url
    # What build_request was given as json=, taken out again: a request outlives its call
    # (httpx's request/response cycle waits for the garbage collector), and the prompt
    # should not live on with it because of us.
    body = request.extensions.pop(JSON_EXTENSION, None)  # our own dict (build_request)
    if body is None:
        try:
            body = request.content
        except Exception:  # a streamed upload we must not consume
            body = b""
    return begin(
        state, request.method, url.scheme, url.host, url.port, url.path, body, request.headers
    )


@guarded(False)
def _watch(response: Any, call: LLMCall, observer: type) -> bool:
    """Put the observer on the body; True once the call is in good hands."""
    headers_arrived(call, response.status_code)
    if response.is_stream_consumed:  # a transport built the body from bytes
        return _read(response, call)
    parser = call.adapter.parser(call, response.headers.get("content-type", ""))
    encoding = response.headers.get("content-encoding")  # the stream is still encoded
    response.stream = observer(response.stream, call, decoded(parser, encoding, call))
    return True


@guarded(False)
def _read(response: Any, call: LLMCall) -> bool:
    """A body already read: decoded by httpx, to the parser in one piece.

    No observer is needed when the app asked for the whole body (or a transport built
    it from bytes): it is all in ``response.content``, decompressed, and the call ends here.
    """
    parser = call.adapter.parser(call, response.headers.get("content-type", ""))
    read_whole(call, parser, response.content)
    return True


def _wrap_build(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def build_request(self: Any, *args: Any, json: Any = None, **kwargs: Any) -> Any:
        request = original(self, *args, json=json, **kwargs)
        if (
            type(json) is dict
            and _state.current is not None
            and match(request.method, request.url.path) is not None  # other JSON is not kept
        ):
            # A new dict: the one httpx holds may be the caller's own.
            request.extensions = {**request.extensions, JSON_EXTENSION: json}
        return request

    setattr(build_request, _ORIGINAL, original)
    return build_request


def _wrap_send(original: Callable[..., Any], observer: type) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, stream: bool = False, **kwargs: Any) -> Any:
        state = _state.current
        call = _begin(state, request) if state is not None else None
        if call is None:
            return original(self, request, *args, stream=stream, **kwargs)
        token = context.attach(call_context(call))  # CALL_KEY: aiohttp under us steps aside
        try:
            response = original(self, request, *args, stream=True, **kwargs)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if stream:
            if not _watch(response, call, observer):
                finish(call, "unobserved")  # our wrapping failed: end the span, leave the call be
            return response
        headers_arrived(call, response.status_code)
        try:  # what httpx does for stream=False; then the decoded body is parsed once, whole
            response.read()
        except BaseException as exc:
            response.close()
            finish(call, "error", exc)
            raise
        if not _read(response, call):
            finish(call, "unobserved")
        return response

    setattr(send, _ORIGINAL, original)
    return send


def _wrap_asend(original: Callable[..., Any], observer: type) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send(self: Any, request: Any, *args: Any, stream: bool = False, **kwargs: Any) -> Any:
        state = _state.current
        call = _begin(state, request) if state is not None else None
        if call is None:
            return await original(self, request, *args, stream=stream, **kwargs)
        token = context.attach(call_context(call))  # CALL_KEY: aiohttp under us steps aside
        try:
            response = await original(self, request, *args, stream=True, **kwargs)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if stream:
            if not _watch(response, call, observer):
                finish(call, "unobserved")
            return response
        headers_arrived(call, response.status_code)
        try:
            await response.aread()
        except BaseException as exc:
            await response.aclose()
            finish(call, "error", exc)
            raise
        if not _read(response, call):
            finish(call, "unobserved")
        return response

    setattr(send, _ORIGINAL, original)
    return send


def patch(module: HttpxModule) -> None:
    """Wrap ``send`` and ``build_request`` of ``module.Client`` and ``module.AsyncClient``
    (idempotent)."""
    name = module.__name__
    if name in _patched:
        return
    client, async_client = module.Client, module.AsyncClient
    send, asend = client.send, async_client.send
    if hasattr(send, _ORIGINAL) or hasattr(asend, _ORIGINAL):
        return
    sync_observer, async_observer = make_observers(module.SyncByteStream, module.AsyncByteStream)
    client.send = _wrap_send(send, sync_observer)
    async_client.send = _wrap_asend(asend, async_observer)
    own_build = ("build_request" in vars(client), "build_request" in vars(async_client))
    for cls in (client, async_client):
        cls.build_request = _wrap_build(cls.build_request)  # type: ignore[attr-defined]
    _patched[name] = _Patched(module, send, asend, own_build)


def unpatch() -> None:
    """Put every original back."""
    for name, patched in list(_patched.items()):
        module = patched.module
        module.Client.send = patched.send
        module.AsyncClient.send = patched.asend
        for cls, own in zip((module.Client, module.AsyncClient), patched.own_build, strict=True):
            wrapped = cls.build_request  # type: ignore[attr-defined]
            if own:
                cls.build_request = getattr(wrapped, _ORIGINAL, wrapped)  # type: ignore[attr-defined]
            elif "build_request" in vars(cls):
                delattr(cls, "build_request")  # inherited again from the base client
        del _patched[name]
