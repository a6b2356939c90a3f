"""Content-Encoding for the parser only: the app's bytes stay as the server sent them.

The observer sits on ``response.stream``, which carries the body still compressed
(httpx decodes above it, in ``iter_bytes``). When a server (or nginx in front of
Ollama) answers ``Content-Encoding: gzip``, ``deflate``, ``br`` or ``zstd``, the
parser is handed a ``DecodedParser`` that inflates each chunk incrementally, at most
``MAX_PIECE`` bytes of output at a time, so a small compressed chunk can never grow
into one huge buffer. ``br`` and ``zstd`` are decoded when the libraries httpx uses
for them (``brotli``/``brotlicffi``; ``zstandard`` or ``backports.zstd``) are importable,
which is also when the client decodes them; an unknown coding is skipped, as httpx does.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Final

from otel_llm._types import LLMCall, Parser, Steady

__all__ = ["MAX_PIECE", "DecodedParser", "decoded", "supported"]

MAX_PIECE: Final = 1 << 16
"""Most decoded bytes produced at once (the parser is fed piece by piece)."""

Decoder = Callable[[bytes], Iterator[bytes]]

_errors: list[type[Exception]] = [zlib.error]
"""What a decoder raises on a body that does not decode (libraries add theirs)."""


def _zlib(wbits: int) -> Decoder:
    inflate = zlib.decompressobj(wbits)

    def decode(data: bytes) -> Iterator[bytes]:
        piece = inflate.decompress(data, MAX_PIECE)
        while piece:
            yield piece
            piece = inflate.decompress(inflate.unconsumed_tail, MAX_PIECE)

    return decode


def _gzip() -> Decoder:
    return _zlib(zlib.MAX_WBITS | 16)


def _deflate() -> Decoder:
    """zlib-wrapped deflate, or raw deflate if the first bytes say so (as httpx does)."""
    current: list[Decoder | None] = [None]

    def decode(data: bytes) -> Iterator[bytes]:
        inner = current[0]
        if inner is None:
            inner = current[0] = _zlib(zlib.MAX_WBITS)
            try:
                yield from inner(data)
                return
            except zlib.error:
                inner = current[0] = _zlib(-zlib.MAX_WBITS)
        yield from inner(data)

    return decode


def _first(*names: str) -> Any:
    """The first of these modules that imports, or None."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _brotli_factory() -> Callable[[], Decoder] | None:
    lib = _first("brotli", "brotlicffi")
    if lib is None:
        return None
    _errors.append(lib.error)

    def make() -> Decoder:
        engine = lib.Decompressor()
        process = getattr(engine, "process", None) or engine.decompress

        def decode(data: bytes) -> Iterator[bytes]:
            if data:
                yield process(data)

        return decode

    return make


def _zstd_factory() -> Callable[[], Decoder] | None:
    lib = _first("compression.zstd", "backports.zstd")
    if lib is None:
        return _zstandard_factory()
    cls = lib.ZstdDecompressor
    _errors.append(lib.ZstdError)

    def make() -> Decoder:
        engine = [cls()]

        def decode(data: bytes) -> Iterator[bytes]:
            while data:
                current = engine[0]
                if current.eof:  # a new frame follows the last one
                    data = current.unused_data + data
                    current = engine[0] = cls()
                piece = current.decompress(data, MAX_PIECE)
                data = b""
                while piece:
                    yield piece
                    if current.needs_input or current.eof:
                        break
                    piece = current.decompress(b"", MAX_PIECE)
                if current.eof and current.unused_data:
                    data, engine[0] = current.unused_data, cls()

        return decode

    return make


def _zstandard_factory() -> Callable[[], Decoder] | None:
    lib = _first("zstandard")
    if lib is None:
        return None
    _errors.append(lib.ZstdError)

    def make() -> Decoder:
        engine = [lib.ZstdDecompressor().decompressobj()]

        def decode(data: bytes) -> Iterator[bytes]:
            while data:
                piece = engine[0].decompress(data)
                data = b""
                if piece:
                    yield piece
                if engine[0].eof and engine[0].unused_data:
                    data = engine[0].unused_data
                    engine[0] = lib.ZstdDecompressor().decompressobj()

        return decode

    return make


def _supported() -> dict[str, Callable[[], Decoder]]:
    table: dict[str, Callable[[], Decoder]] = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate}
    brotli = _brotli_factory()
    if brotli is not None:
        table["br"] = brotli
    zstd = _zstd_factory()
    if zstd is not None:
        table["zstd"] = zstd
    return table


_SUPPORTED: Final = _supported()
_ERRORS: Final = tuple(_errors)


def supported() -> frozenset[str]:
    """The content codings this process can decode."""
    return frozenset(_SUPPORTED)


class DecodedParser:
    """A parser fed the decoded body; a body that does not decode is ``invalid_response``."""

    __slots__ = ("_decoders", "_failed", "_inner", "call")

    steady: Steady | None = None  # the raw chunks are compressed: each goes to the decoder

    def __init__(self, inner: Parser, decoders: list[Decoder], call: LLMCall) -> None:
        self._inner = inner
        self._decoders = decoders
        self._failed = False
        self.call = call

    def feed(self, data: bytes) -> bool:
        if self._failed:
            return False
        try:
            pieces = self._pipe(data)
            for piece in pieces:
                if self._inner.feed(piece):
                    return True
        except _ERRORS as exc:
            return self._fail(exc)
        return False

    def _pipe(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((data,))
        for decode in self._decoders:
            pieces = _chain(decode, pieces)
        return pieces

    def _fail(self, exc: BaseException) -> bool:
        self._failed = True
        call = self.call
        if call.error_type is None:
            call.error_type = "invalid_response"
            call.error_message = f"response body does not decode: {exc}"[:512]
        return True

    def close(self) -> None:
        if not self._failed:
            self._inner.close()


def _chain(decode: Decoder, upstream: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in upstream:
        yield from decode(chunk)


def decoded(parser: Parser, content_encoding: str | None, call: LLMCall) -> Parser:
    """``parser`` itself for an identity body; else a parser that decodes first."""
    if not content_encoding:
        return parser
    decoders = [
        _SUPPORTED[coding]()
        for coding in (c.strip().lower() for c in reversed(content_encoding.split(",")))
        if coding in _SUPPORTED
    ]
    if not decoders:
        return parser
    return DecodedParser(parser, decoders, call)
