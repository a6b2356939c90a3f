"""Sans-I/O framing shared by every parser: lines (NDJSON, SSE) and capped bodies.

Both hold only what they must: a partial line, or the head and tail of a body
too large to keep. Feeding never copies the common case (a chunk holding whole
lines) and never grows without bound.
"""

from __future__ import annotations

__all__ = ["BodyBuffer", "LineFramer"]

MAX_PARTIAL_LINE = 1 << 20
"""A line longer than this is dropped unread (memory stays bounded; bytes still pass)."""


class LineFramer:
    """Turns arbitrary chunks into regions that end at a newline."""

    __slots__ = ("dropped", "partial")

    def __init__(self) -> None:
        self.partial = b""
        """Bytes of a line still waiting for its newline."""
        self.dropped = 0

    def feed(self, data: bytes) -> bytes:
        """Bytes made of complete lines (possibly empty); the rest waits for more."""
        if self.partial:
            data = self.partial + data
            self.partial = b""
        if data.endswith(b"\n"):
            return data
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > MAX_PARTIAL_LINE:
            self.dropped += 1
            rest = b""
        self.partial = rest
        return data[:cut]

    def flush(self) -> bytes:
        """What is left when the body ends: a last line with no newline, or nothing."""
        rest, self.partial = self.partial, b""
        return rest


class BodyBuffer:
    """Keeps a whole body up to ``limit``; past it, only its head and tail."""

    __slots__ = ("_head", "_parts", "_size", "_tail", "limit")

    def __init__(self, limit: int = 1 << 16) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._head = b""
        self._tail = b""

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        if not self._head:
            self._parts.append(data)
            if self._size > self.limit:
                whole = b"".join(self._parts)
                self._parts = []
                self._head = whole[: self.limit]
                self._tail = whole[-self.limit :]
        else:
            self._tail = (self._tail + data)[-self.limit :]

    @property
    def whole(self) -> bytes | None:
        """The complete body, or None if it was too large to keep."""
        return None if self._head else b"".join(self._parts)

    @property
    def head(self) -> bytes:
        return self._head or b"".join(self._parts)

    @property
    def tail(self) -> bytes:
        return self._tail or b"".join(self._parts)

    @property
    def size(self) -> int:
        return self._size
