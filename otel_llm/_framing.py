"""Sans-I/O framing shared by every parser: lines (NDJSON, SSE), capped bodies, skims.

Each holds only what it must: a partial line, a whole body up to a limit, or, for a
line or body too long to keep, a ``Skim``: its head and tail, and whether what lies
between is one run of numbers (Ollama's ``context``, an embedding) or the inside of one
string (a long answer). A skim joins its two ends into one valid JSON text, so a
record of any length still yields its small fields (``done``, counts, durations) in
bounded memory. Feeding never copies the common case (a chunk holding whole lines).
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["MAX_LINE", "SKIM_KEEP", "BodyBuffer", "LineFramer", "Skim"]

MAX_LINE: Final = 1 << 20
"""A line longer than this is skimmed rather than kept whole (bytes still pass)."""
SKIM_KEEP: Final = 1 << 16
"""Bytes a skim keeps at each end."""

_NUMERIC: Final = b"0123456789.eE+-, \t\r\n"
_HIGH: Final = bytes(range(0x80, 0x100))
_CONTINUATION: Final = bytes(range(0x80, 0xC0))


class Skim:
    """A JSON text too long to keep: its head, its tail, and the nature of the middle."""

    __slots__ = (
        "_keep",
        "_middle_end",
        "_parts",
        "_size_parts",
        "head",
        "numeric",
        "size",
        "stringy",
    )

    def __init__(self, keep: int = SKIM_KEEP) -> None:
        self.head = b""
        self.size = 0
        self.numeric = True
        """Every elided byte is part of a number list (digits, signs, commas, spaces)."""
        self.stringy = True
        """No elided byte ends a string (every quote in the middle is escaped)."""
        self._parts: deque[bytes] = deque()
        self._size_parts = 0
        self._middle_end = b""
        self._keep = keep

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        room = self._keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
            self._middle_end = self.head[-16:]  # what the middle will follow
            if not data:
                return
        parts = self._parts
        parts.append(data)
        self._size_parts += len(data)
        while self._size_parts - len(parts[0]) >= self._keep:
            fallen = parts.popleft()
            self._size_parts -= len(fallen)
            self._elide(fallen)

    def _elide(self, fallen: bytes) -> None:
        # a short look first: text is not numbers, and says so in its first bytes
        if self.numeric and (
            fallen[:64].translate(None, _NUMERIC) or fallen.translate(None, _NUMERIC)
        ):
            self.numeric = False
        # ``in`` is a memchr: most of a long answer holds no quote at all
        if self.stringy and b'"' in fallen:
            escaped = fallen.count(b'\\"')
            if fallen[:1] == b'"' and self._middle_end.endswith(b"\\"):  # split by a cut
                escaped += 1
            if fallen.count(b'"') != escaped:
                self.stringy = False
        self._middle_end = fallen[-16:]

    @property
    def tail(self) -> bytes:
        """The last ``keep`` bytes (what came before them is elided)."""
        whole = b"".join(self._parts)
        if len(whole) > self._keep:
            self._elide(whole[: -self._keep])
            whole = whole[-self._keep :]
            self._parts = deque([whole])
            self._size_parts = len(whole)
        return whole

    def joined(self) -> bytes | None:
        """Head and tail as one JSON text with the middle left out; None if unsafe."""
        tail = self.tail
        head = self.head
        if len(head) + len(tail) == self.size:  # nothing was left out
            return head + tail
        if self.numeric:
            stem = head.rstrip(_NUMERIC)
            rest = tail.lstrip(_NUMERIC)
            if stem.endswith(b"[") and rest.startswith(b"]"):  # inside one list of numbers
                comma = head.rfind(b",", len(stem))
                if comma >= 0:
                    stem = head[: comma + 1]
                comma = tail.find(b",", 0, len(tail) - len(rest))
                if comma >= 0:
                    rest = tail[comma + 1 :]
                elif stem.endswith(b","):
                    stem = stem[:-1]
                return stem + rest
        if self.stringy:
            cut = head.rfind(b"\\", len(head) - 6)  # an escape sequence cut short
            stem = (head[:cut] if cut >= 0 else head).rstrip(b"\\").rstrip(_HIGH)
            end = self._middle_end
            if (len(end) - len(end.rstrip(b"\\"))) % 2:  # the tail starts escaped
                tail = tail[5:] if tail[:1] == b"u" else tail[1:]
            return stem + tail.lstrip(_CONTINUATION)
        return None


class LineFramer:
    """Turns arbitrary chunks into regions that end at a newline.

    A line longer than ``MAX_LINE`` is not kept: it is skimmed, and handed over in
    ``skimmed`` by the ``feed`` that sees its end (before that feed's region).
    """

    __slots__ = ("_long", "_parts", "_size", "busy", "skimmed")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._long: Skim | None = None
        self.busy = False
        """A line is waiting for its newline: the next chunk cannot be taken as is."""
        self.skimmed: Skim | None = None
        """A long line that has just ended (the parser takes it and sets this to None)."""

    def feed(self, data: bytes) -> bytes:
        """Bytes made of complete lines (possibly empty); the rest waits for more."""
        if self.busy:
            cut = data.find(b"\n")
            if cut < 0:
                self._wait(data)
                return b""
            long = self._long
            if long is not None:
                long.feed(data[:cut])
                self.skimmed, self._long = long, None
                data = data[cut + 1 :]
            else:
                data = b"".join(self._parts) + data
                self._parts, self._size = [], 0
            self.busy = False
        if data.endswith(b"\n"):
            return data
        cut = data.rfind(b"\n") + 1
        self._wait(data[cut:])
        return data[:cut]

    def _wait(self, rest: bytes) -> None:
        if not rest:
            return
        self.busy = True
        long = self._long
        if long is not None:
            long.feed(rest)
            return
        self._parts.append(rest)
        self._size += len(rest)
        if self._size > MAX_LINE:
            long = self._long = Skim()
            for part in self._parts:
                long.feed(part)
            self._parts, self._size = [], 0

    def flush(self) -> bytes:
        """What is left when the body ends: a last line with no newline, or nothing.

        A long last line is handed over in ``skimmed`` instead.
        """
        self.busy = False
        if self._long is not None:
            self.skimmed, self._long = self._long, None
            return b""
        rest = b"".join(self._parts)
        self._parts, self._size = [], 0
        return rest


class BodyBuffer:
    """Keeps a whole body up to ``limit``; past it, only a ``Skim`` of it."""

    __slots__ = ("_parts", "_size", "limit", "skim")

    def __init__(self, limit: int = 1 << 16) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self.skim: Skim | None = None
        """Set once the body outgrew ``limit``."""

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        skim = self.skim
        if skim is not None:
            skim.feed(data)
            return
        self._parts.append(data)
        if self._size > self.limit:
            skim = self.skim = Skim(self.limit)
            for part in self._parts:
                skim.feed(part)
            self._parts = []

    @property
    def whole(self) -> bytes | None:
        """The complete body, or None if it was too large to keep."""
        return None if self.skim is not None else b"".join(self._parts)

    @property
    def head(self) -> bytes:
        return self.skim.head if self.skim is not None else b"".join(self._parts)

    @property
    def tail(self) -> bytes:
        return self.skim.tail if self.skim is not None else b"".join(self._parts)

    @property
    def size(self) -> int:
        return self._size
