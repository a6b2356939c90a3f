"""[1] The requests front-end: ``Session.send``, observed at ``Response.iter_content``.

``Session.send`` sees each logical call once (``requests.post`` goes through it,
urllib3's retries happen below it). Redirect hops re-enter ``send`` from inside
the first one; ``CALL_KEY`` in the context tells them apart, so a redirected
call is still one span. Like the httpx front-end, the wrapper asks the original
for a streamed response, marks it, then reads the body itself when the caller
asked for ``stream=False``, so the body is always read after we are watching.

Every way requests hands out a body (``content``, ``json()``, ``text``,
``iter_content``, ``iter_lines``) goes through ``Response.iter_content``, which
yields urllib3's *decoded* bytes: its class-level wrapper puts the core's
``ObservedStream`` around the first iteration of a marked response. A response
read through ``resp.raw`` directly is not parsed; its call ends on ``close()``
or when the response is garbage-collected.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context

from otel_llm import _state
from otel_llm._begin import begin, call_context, headers_arrived, in_call, read_whole
from otel_llm._finish import finish
from otel_llm._guard import guarded
from otel_llm._observe import ObservedStream
from otel_llm._types import LLMCall, Parser

__all__ = ["patch", "patched", "unpatch"]

_ORIGINAL = "__otel_llm_original__"
_WATCH = "_otel_llm_watch"
"""Instance attribute of a ``Response`` whose body belongs to an LLM call."""


@dataclass(slots=True)
class _Watch:
    call: LLMCall
    parser: Parser
    observing: bool = False


_originals: dict[str, Callable[..., Any]] = {}


def patched() -> bool:
    return bool(_originals)


@guarded(None)
def _begin(state: _state.State, request: Any) -> LLMCall | None:
    """``begin`` for a ``PreparedRequest``."""
    url = urlsplit(request.url)
    body = request.body
    return begin(
        state,
        request.method or "",
        url.scheme,
        url.hostname or "",
        url.port,
        url.path,
        body if isinstance(body, (bytes, str)) else None,
        request.headers,
    )


def _collected(call: LLMCall) -> None:
    """The response was garbage-collected before its body was read to the end."""
    if not call.finished:
        finish(call, "gc", end_ns=max(call.first_chunk_ns, call.headers_ns))


@guarded(False)
def _watch(response: Any, call: LLMCall) -> bool:
    """Mark the response for ``iter_content``; True once the call is in good hands."""
    headers_arrived(call, response.status_code)
    parser = call.adapter.parser(call, response.headers.get("content-type", ""))
    if response._content_consumed:  # a response hook read the body inside send
        content = response._content
        read_whole(call, parser, content if isinstance(content, bytes) else b"")
        return True
    response.__dict__[_WATCH] = _Watch(call, parser)
    weakref.finalize(response, _collected, call).atexit = False
    return True


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        state = _state.current
        if state is None or in_call():
            return original(self, request, **kwargs)
        call = _begin(state, request)
        if call is None:
            return original(self, request, **kwargs)
        stream = kwargs.get("stream", self.stream)
        kwargs["stream"] = True
        token = context.attach(call_context(call))
        try:
            response = original(self, request, **kwargs)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if not _watch(response, call):
            finish(call, "unobserved")
        if not stream:
            response.content  # noqa: B018 - what requests' own send does for stream=False
        return response

    setattr(send, _ORIGINAL, original)
    return send


def _wrap_iter_content(
    original: Callable[..., Iterator[Any]], decode: Callable[..., Iterator[Any]]
) -> Callable[..., Iterator[Any]]:
    @functools.wraps(original)
    def iter_content(self: Any, chunk_size: int | None = 1, decode_unicode: bool = False) -> Any:
        watch: _Watch | None = self.__dict__.get(_WATCH)
        if watch is None or watch.observing or watch.call.finished or self._content_consumed:
            return original(self, chunk_size, decode_unicode)
        chunks = original(self, chunk_size, False)  # its eager checks raise here, unchanged
        watch.observing = True
        observed = iter(ObservedStream(chunks, watch.call, watch.parser))
        # requests decodes text after the byte chunks; so do we, with its own helper.
        return decode(observed, self) if decode_unicode else observed

    setattr(iter_content, _ORIGINAL, original)
    return iter_content


def _wrap_close(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def close(self: Any) -> None:
        try:
            original(self)
        finally:
            watch: _Watch | None = self.__dict__.get(_WATCH)
            if watch is not None:
                finish(watch.call, "close")

    setattr(close, _ORIGINAL, original)
    return close


def patch() -> None:
    """Wrap ``Session.send``, ``Response.iter_content`` and ``Response.close`` (idempotent).

    A no-op when requests is not installed.
    """
    if _originals:
        return
    try:
        import requests
        from requests.utils import stream_decode_response_unicode
    except ImportError:
        return
    session, response = requests.Session, requests.Response
    if hasattr(session.send, _ORIGINAL):
        return
    _originals.update(send=session.send, iter_content=response.iter_content, close=response.close)
    session.send = _wrap_send(session.send)  # type: ignore[method-assign]
    response.iter_content = _wrap_iter_content(  # type: ignore[method-assign]
        response.iter_content, stream_decode_response_unicode
    )
    response.close = _wrap_close(response.close)  # type: ignore[method-assign]


def unpatch() -> None:
    """Put every original back."""
    if not _originals:
        return
    import requests

    requests.Session.send = _originals.pop("send")  # type: ignore[method-assign]
    requests.Response.iter_content = _originals.pop("iter_content")  # type: ignore[method-assign]
    requests.Response.close = _originals.pop("close")  # type: ignore[method-assign]
