"""[1] The DSPy front-end: its vendored socket-level client, version-gated.

DSPy 3.x sends ``ollama_chat/`` (and every other provider's) calls through
``dspy._vendor.lm15.transports``, a stdlib HTTP/1.1 client no HTTP-library
patch sees. It is private API, so this front-end patches only the vendored
lm15 versions listed in ``TESTED`` (the framework matrix proves each); any
other version is left alone, and ``otel-llm proxy`` is the route (docs/reach.md).

``StdlibTransport.stream`` (sync) and ``StdlibAsyncTransport._do_stream``
(async, behind ``stream()``'s awaitable context manager) each return the
response after its head; the body iterator ``_chunks`` gets the core's
observer. ``_release_once``, reached from ``close()``/``aclose()`` and the end
of iteration, ends a call the app stopped reading.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry import context

from otel_llm import _state
from otel_llm._begin import begin, call_context, headers_arrived, in_call
from otel_llm._finish import finish
from otel_llm._guard import guarded
from otel_llm._observe import AsyncObservedStream, ObservedStream
from otel_llm._types import LLMCall

__all__ = ["TESTED", "patch", "patched", "unpatch"]

TESTED: Final = frozenset({"1.0.0rc3"})
"""Vendored lm15 versions whose transport layout this front-end was tested against."""

_ORIGINAL = "__otel_llm_original__"
_CALL = "_otel_llm_call"
_originals: dict[str, Any] = {}


def patched() -> bool:
    return bool(_originals)


@guarded(None)
def _begin(state: _state.State, request: Any) -> LLMCall | None:
    """``begin`` for a ``TransportRequest`` (headers are a list of pairs)."""
    url = urlsplit(request.url)
    extra: dict[str, str] = {}
    call = begin(
        state,
        request.method,
        url.scheme,
        url.hostname or "",
        url.port,
        url.path,
        request.body if isinstance(request.body, bytes) else None,
        extra,
    )
    if call is not None and extra:
        request.headers.extend(extra.items())
    return call


def _collected(call: LLMCall) -> None:
    if not call.finished:
        finish(call, "gc", end_ns=max(call.first_chunk_ns, call.headers_ns))


@guarded(False)
def _watch(response: Any, call: LLMCall, observer: type) -> bool:
    headers_arrived(call, response.status)
    parser = call.adapter.parser(call, response.header("content-type") or "")
    observed = observer(response._chunks, call, parser)
    response._chunks = aiter(observed) if observer is AsyncObservedStream else iter(observed)
    response.__dict__[_CALL] = call
    weakref.finalize(response, _collected, call).atexit = False
    return True


def _wrap_stream(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def stream(self: Any, request: Any) -> Any:
        state = _state.current
        if state is None or in_call():
            return original(self, request)
        call = _begin(state, request)
        if call is None:
            return original(self, request)
        token = context.attach(call_context(call))
        try:
            response = original(self, request)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if not _watch(response, call, ObservedStream):
            finish(call, "unobserved")
        return response

    setattr(stream, _ORIGINAL, original)
    return stream


def _wrap_do_stream(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def _do_stream(self: Any, request: Any) -> Any:
        state = _state.current
        if state is None or in_call():
            return await original(self, request)
        call = _begin(state, request)
        if call is None:
            return await original(self, request)
        token = context.attach(call_context(call))
        try:
            response = await original(self, request)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if not _watch(response, call, AsyncObservedStream):
            finish(call, "unobserved")
        return response

    setattr(_do_stream, _ORIGINAL, original)
    return _do_stream


def _wrap_release(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _release_once(self: Any, *, body_consumed: bool) -> Any:
        try:
            return original(self, body_consumed=body_consumed)
        finally:
            call: LLMCall | None = self.__dict__.get(_CALL)
            if call is not None:
                finish(call, "close")

    setattr(_release_once, _ORIGINAL, original)
    return _release_once


def _wrap_arelease(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def _release_once(self: Any, *, body_consumed: bool) -> Any:
        try:
            return await original(self, body_consumed=body_consumed)
        finally:
            call: LLMCall | None = self.__dict__.get(_CALL)
            if call is not None:
                finish(call, "close")

    setattr(_release_once, _ORIGINAL, original)
    return _release_once


def _targets() -> dict[str, tuple[Any, str]] | None:
    """The classes and methods to wrap, or None: DSPy absent, or an untested lm15."""
    try:
        from dspy._vendor.lm15 import _version  # type: ignore[import-not-found]
        from dspy._vendor.lm15.transports import (  # type: ignore[import-not-found]
            StdlibAsyncTransport,
            StdlibTransport,
            _types,
        )
    except Exception:  # not installed, or laid out differently: not ours to patch
        return None
    if getattr(_version, "__version__", None) not in TESTED:
        return None
    return {
        "stream": (StdlibTransport, "stream"),
        "_do_stream": (StdlibAsyncTransport, "_do_stream"),
        "release": (_types.TransportResponse, "_release_once"),
        "arelease": (_types.AsyncTransportResponse, "_release_once"),
    }


_WRAPPERS: Final[dict[str, Callable[[Any], Any]]] = {
    "stream": _wrap_stream,
    "_do_stream": _wrap_do_stream,
    "release": _wrap_release,
    "arelease": _wrap_arelease,
}


def patch() -> None:
    """Wrap the vendored transport when DSPy ships a tested lm15 (idempotent); else a no-op."""
    if _originals:
        return
    targets = _targets()
    if targets is None:
        return
    found = {key: (cls, name, getattr(cls, name)) for key, (cls, name) in targets.items()}
    if any(hasattr(original, _ORIGINAL) for _cls, _name, original in found.values()):
        return
    _originals.update(found)
    for key, (cls, name, original) in found.items():
        setattr(cls, name, _WRAPPERS[key](original))


def unpatch() -> None:
    """Put every original back."""
    for cls, name, original in _originals.values():
        setattr(cls, name, original)
    _originals.clear()
