"""[4] Watch a response body go by without touching it.

``response.stream`` is replaced by an observer that yields every chunk
unchanged, feeds a copy-free view of it to the adapter's parser (or, once the
parser says a stream is steady, counts an ordinary record itself), and ends the
call exactly once: on the final record, at exhaustion, on ``close``/``aclose``,
on any exception while reading (``BaseException``, so cancellation too), or
when an abandoned response is garbage-collected. The classes are built per
httpx module, because httpx checks ``isinstance(stream, SyncByteStream)``.
The chunks are the body as sent: a compressed body reaches the parser through
``_decoding.decoded``, which inflates a copy for it and never for the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from time import perf_counter_ns
from typing import Any, Final

from otel_llm._finish import finish
from otel_llm._guard import report
from otel_llm._types import LLMCall, Parser, Steady

__all__ = ["make_observers"]


def _feed_nothing(data: bytes) -> bool:
    return False


_NEVER: Final = Steady(b"", (), 0)
"""Not steady: with no tails to test, every chunk goes to the parser's feed."""


class _ObserverBase:
    """State and endings shared by the sync and async observers."""

    _inner: Any
    _call: LLMCall
    _parser: Parser

    def __init__(self, inner: Any, call: LLMCall, parser: Parser) -> None:
        self._inner = inner
        self._call = call
        self._parser = parser

    def _exhausted(self) -> None:
        call = self._call
        if call.finished:
            return
        try:
            self._parser.close()
        except Exception as exc:
            report("otel_llm._observe.parser_close", exc)
        finish(call, "exhausted")

    def _parse_failed(self, exc: Exception) -> Callable[[bytes], bool]:
        """Our parser broke: say so once, stop parsing, let the bytes flow on."""
        report("otel_llm._observe.parser_feed", exc)
        return _feed_nothing

    def _steady(self, feed: Callable[[bytes], bool]) -> Steady:
        """What a chunk must look like to be counted here (``Steady``); after every feed."""
        if feed is _feed_nothing:
            return _NEVER
        return self._parser.steady or _NEVER

    def _step(self, feed: Callable[[bytes], bool], chunk: bytes) -> Callable[[bytes], bool]:
        """Feed one chunk outside the loop; the feed to use from now on."""
        try:
            if feed(chunk):
                finish(self._call, "final")
                return _feed_nothing
        except Exception as exc:
            return self._parse_failed(exc)
        return feed

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None and not call.finished:
            finish(call, "gc", end_ns=max(call.first_chunk_ns, call.headers_ns))


class ObservedStream(_ObserverBase):
    """Sync twin: ``__iter__`` + ``close``."""

    def __iter__(self) -> Iterator[bytes]:
        call = self._call
        feed: Callable[[bytes], bool] = self._parser.feed
        chunks = iter(self._inner)
        try:
            # Until the first byte, stamp time to first chunk.
            for chunk in chunks:
                if chunk:
                    call.first_chunk_ns = perf_counter_ns()
                    feed = self._step(feed, chunk)
                    yield chunk
                    break
                yield chunk
            # Then an ordinary record (``Steady``) is counted here, with no call into the
            # parser: a few byte tests per chunk for most of a stream. Anything else is fed.
            head, tail, lines = _NEVER  # until a chunk fed in the loop says otherwise
            for chunk in chunks:
                try:
                    if (
                        tail
                        and chunk.endswith(tail)
                        and chunk.count(b"\n") == lines
                        and (not head or chunk.startswith(head))
                    ):
                        call.chunks += 1
                    else:
                        if feed(chunk):
                            finish(call, "final")
                            feed = _feed_nothing
                        head, tail, lines = self._steady(feed)
                except Exception as exc:
                    feed = self._parse_failed(exc)
                    head, tail, lines = _NEVER
                yield chunk
        except GeneratorExit:
            finish(call, "close")
            raise
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        self._exhausted()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            finish(self._call, "close")


class AsyncObservedStream(_ObserverBase):
    """Async twin: ``__aiter__`` + ``aclose``."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        call = self._call
        feed: Callable[[bytes], bool] = self._parser.feed
        chunks = aiter(self._inner)
        try:
            async for chunk in chunks:
                if chunk:
                    call.first_chunk_ns = perf_counter_ns()
                    feed = self._step(feed, chunk)
                    yield chunk
                    break
                yield chunk
            head, tail, lines = _NEVER
            async for chunk in chunks:
                try:
                    if (
                        tail
                        and chunk.endswith(tail)
                        and chunk.count(b"\n") == lines
                        and (not head or chunk.startswith(head))
                    ):
                        call.chunks += 1
                    else:
                        if feed(chunk):
                            finish(call, "final")
                            feed = _feed_nothing
                        head, tail, lines = self._steady(feed)
                except Exception as exc:
                    feed = self._parse_failed(exc)
                    head, tail, lines = _NEVER
                yield chunk
        except GeneratorExit:
            finish(call, "close")
            raise
        except BaseException as exc:
            finish(call, "error", exc)
            raise
        self._exhausted()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            finish(self._call, "close")


def make_observers(sync_base: type, async_base: type) -> tuple[type, type]:
    """Observer classes that also pass httpx's (or httpx2's) stream type checks."""
    sync_cls = type("ObservedStream", (ObservedStream, sync_base), {"__module__": __name__})
    async_cls = type(
        "AsyncObservedStream", (AsyncObservedStream, async_base), {"__module__": __name__}
    )
    return sync_cls, async_cls
