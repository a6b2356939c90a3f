"""[1] The aiohttp front-end: ``ClientSession._request``, observed at the response's reader.

``session.post()``, ``session.request()`` and ``async with`` all await
``_request`` once per logical call (redirects are followed inside it). When
another front-end's send is already running (``CALL_KEY`` set: aiohttp as the
transport under ``httpx.AsyncClient``, as LiteLLM and httpx-aiohttp use it),
the wrapper steps aside, so one call stays one span.

aiohttp hands the body out through ``resp.content``, a ``StreamReader`` holding
already *decompressed* bytes: ``read()``/``json()``/``text()``, ``async for
line in resp.content``, ``readline``, ``iter_chunked``, ``iter_any``,
``iter_chunks``, ``readexactly``, ``read_nowait``. The reader of a watched
response is switched to ``ObservedStreamReader``, a slot-less subclass whose
read methods return exactly what the originals return and feed a copy to the
adapter's parser. ``StreamReader`` has ``__slots__``, so the watch lives in a
module dict keyed by the reader's id, dropped when the call ends. The call ends
on the final record, at end of body, on any exception while reading
(cancellation too), on ``release()``/``close()``, or when the response is
garbage-collected.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from opentelemetry import context

from otel_llm import _state
from otel_llm._begin import begin, call_context, headers_arrived, in_call
from otel_llm._finish import finish
from otel_llm._guard import guarded, report
from otel_llm._types import LLMCall, Parser

__all__ = ["patch", "patched", "unpatch"]

_ORIGINAL = "__otel_llm_original__"


def _feed_nothing(data: bytes) -> bool:
    return False


@dataclass(slots=True)
class _Watch:
    call: LLMCall
    parser: Parser
    feed: Callable[[bytes], bool]
    depth: int = 0
    """Read methods nest (``read()`` calls ``readany``); only the outermost one feeds."""


_watches: dict[int, _Watch] = {}
_originals: dict[str, Any] = {}
_reader_class: list[type] = []


def patched() -> bool:
    return bool(_originals)


def _end(
    key: int, watch: _Watch, ended_by: str, exc: BaseException | None = None, end_ns: int = 0
) -> None:
    if _watches.get(key) is watch:
        del _watches[key]
    finish(watch.call, ended_by, exc, end_ns)


def _seen(reader: Any, watch: _Watch, data: bytes) -> None:
    """The app was handed ``data``: parse it; end the call at the final record or end of body."""
    call = watch.call
    if data:
        if not call.first_chunk_ns:
            call.first_chunk_ns = perf_counter_ns()
        try:
            if watch.feed(data):
                _end(id(reader), watch, "final")
                return
        except Exception as exc:  # our parser broke: say so once, let the bytes flow on
            report("otel_llm._patch_aiohttp.parser_feed", exc)
            watch.feed = _feed_nothing
    if reader.at_eof():
        try:
            watch.parser.close()
        except Exception as exc:
            report("otel_llm._patch_aiohttp.parser_close", exc)
        _end(id(reader), watch, "exhausted")


def _observed_reader(base: Any) -> type:
    """``StreamReader`` with every read method observed (built once, at ``patch()``)."""

    async def observe(reader: Any, read: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        watch = _watches.get(id(reader))
        if watch is None or watch.depth:
            return await read(reader, *args)
        watch.depth = 1
        try:
            result = await read(reader, *args)
        except BaseException as exc:
            _end(id(reader), watch, "error", exc)
            raise
        finally:
            watch.depth = 0
        _seen(reader, watch, result[0] if isinstance(result, tuple) else result)
        return result

    class ObservedStreamReader(base):  # type: ignore[misc]
        __slots__ = ()

        async def read(self, n: int = -1) -> bytes:
            return await observe(self, base.read, n)  # type: ignore[no-any-return]

        async def readany(self) -> bytes:
            return await observe(self, base.readany)  # type: ignore[no-any-return]

        async def readuntil(self, separator: bytes = b"\n", **kwargs: Any) -> bytes:
            if not kwargs:  # every line of ``async for line in resp.content``: no partial
                return await observe(self, base.readuntil, separator)  # type: ignore[no-any-return]
            read = functools.partial(base.readuntil, separator=separator, **kwargs)
            return await observe(self, read)  # type: ignore[no-any-return]

        async def readchunk(self) -> tuple[bytes, bool]:
            return await observe(self, base.readchunk)  # type: ignore[no-any-return]

        async def readexactly(self, n: int) -> bytes:
            return await observe(self, base.readexactly, n)  # type: ignore[no-any-return]

        def read_nowait(self, n: int = -1) -> bytes:
            watch = _watches.get(id(self))
            if watch is None or watch.depth:
                return base.read_nowait(self, n)  # type: ignore[no-any-return]
            try:
                data: bytes = base.read_nowait(self, n)
            except BaseException as exc:
                _end(id(self), watch, "error", exc)
                raise
            _seen(self, watch, data)
            return data

    ObservedStreamReader.__module__ = __name__
    return ObservedStreamReader


@guarded(None)
def _begin(
    state: _state.State, session: Any, method: str, url: Any, kwargs: dict[str, Any]
) -> LLMCall | None:
    """``begin`` for ``_request``'s arguments; puts ``traceparent`` in a copy of the headers."""
    build = getattr(session, "_build_url", None)
    target = build(url) if build is not None else _originals["URL"](url)
    body: Any = kwargs.get("json")
    if not isinstance(body, Mapping):
        data = kwargs.get("data")
        body = data if isinstance(data, (bytes, str)) else None
    extra: dict[str, str] = {}
    call = begin(
        state,
        method.upper(),
        target.scheme,
        target.host or "",
        target.port,
        target.path,
        body,
        extra,
    )
    if call is not None and extra:
        headers = _originals["CIMultiDict"](kwargs.get("headers") or ())
        headers.update(extra)
        kwargs["headers"] = headers
    return call


def _collected(key: int, watch: _Watch) -> None:
    """The response was garbage-collected before its body was read to the end."""
    call = watch.call
    _end(key, watch, "gc", end_ns=max(call.first_chunk_ns, call.headers_ns))


@guarded(False)
def _watch(response: Any, call: LLMCall) -> bool:
    """Switch the response's reader to the observed class; True once the call is in good hands."""
    headers_arrived(call, response.status)
    reader = response.content
    if type(reader) is not _originals["StreamReader"]:  # no body (HEAD, 204) or not ours
        finish(call, "exhausted")
        return True
    parser = call.adapter.parser(call, response.headers.get("content-type", ""))
    watch = _Watch(call, parser, parser.feed)
    key = id(reader)
    _watches[key] = watch
    reader.__class__ = _reader_class[0]
    weakref.finalize(response, _collected, key, watch).atexit = False
    return True


def _wrap_request(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def _request(self: Any, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        state = _state.current
        if state is None or in_call():
            return await original(self, method, str_or_url, **kwargs)
        call = _begin(state, self, method, str_or_url, kwargs)
        if call is None:
            return await original(self, method, str_or_url, **kwargs)
        token = context.attach(call_context(call))
        try:
            response = await original(self, method, str_or_url, **kwargs)
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        finally:
            context.detach(token)
        if not _watch(response, call):
            finish(call, "unobserved")
        return response

    setattr(_request, _ORIGINAL, original)
    return _request


def _wrap_end(original: Callable[..., Any]) -> Callable[..., Any]:
    """``release``/``close``: the app is done with the body, read or not."""

    @functools.wraps(original)
    def end(self: Any) -> Any:
        try:
            return original(self)
        finally:
            reader = self.content
            if type(reader) is _reader_class[0]:
                watch = _watches.get(id(reader))
                if watch is not None:
                    _end(id(reader), watch, "close")

    setattr(end, _ORIGINAL, original)
    return end


def patch() -> None:
    """Wrap ``ClientSession._request`` and ``ClientResponse.release``/``close`` (idempotent).

    A no-op when aiohttp is not installed.
    """
    if _originals:
        return
    try:
        import aiohttp
        from aiohttp.streams import StreamReader
        from multidict import CIMultiDict
        from yarl import URL
    except ImportError:
        return
    session, response = aiohttp.ClientSession, aiohttp.ClientResponse
    if hasattr(session._request, _ORIGINAL):
        return
    if not _reader_class:
        _reader_class.append(_observed_reader(StreamReader))
    _originals.update(
        _request=session._request,
        release=response.release,
        close=response.close,
        StreamReader=StreamReader,
        CIMultiDict=CIMultiDict,
        URL=URL,
    )
    session._request = _wrap_request(session._request)  # type: ignore[method-assign, assignment]
    response.release = _wrap_end(response.release)  # type: ignore[method-assign]
    response.close = _wrap_end(response.close)  # type: ignore[method-assign]


def unpatch() -> None:
    """Put every original back; readers already switched keep reading, unobserved."""
    if not _originals:
        return
    import aiohttp

    aiohttp.ClientSession._request = _originals["_request"]  # type: ignore[method-assign]
    aiohttp.ClientResponse.release = _originals["release"]  # type: ignore[method-assign]
    aiohttp.ClientResponse.close = _originals["close"]  # type: ignore[method-assign]
    _originals.clear()
