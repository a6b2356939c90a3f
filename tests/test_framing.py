"""Sans-I/O framing: any chunk split gives the same lines; memory stays bounded."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from otel_llm._framing import MAX_LINE, BodyBuffer, LineFramer, Skim


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return out


class TestLineFramer:
    @given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=12))
    def test_any_split_gives_back_the_input(self, data: bytes, cuts: list[int]) -> None:
        """Regions plus the flushed rest are the input; every region ends at a newline."""
        framer = LineFramer()
        regions = [framer.feed(chunk) for chunk in split(data, cuts)]
        assert all(r == b"" or r.endswith(b"\n") for r in regions)
        assert data == b"".join(regions) + framer.flush()

    def test_overlong_line_skimmed(self) -> None:
        """A line longer than the cap is skimmed: bounded, handed over at its newline."""
        framer = LineFramer()
        for _ in range(3):
            assert b"" == framer.feed(b"x" * (MAX_LINE // 2 + 1))
        assert framer.skimmed is None
        assert b"ok\n" == framer.feed(b"\nok\n")
        skim = framer.skimmed
        assert skim is not None
        assert (3 * (MAX_LINE // 2 + 1), b"x" * 65536, b"x" * 65536) == (
            skim.size,
            skim.head,
            skim.tail,
        )

    def test_overlong_last_line_skimmed_at_flush(self) -> None:
        """A long line the body ends without a newline is handed over by ``flush``."""
        framer = LineFramer()
        framer.feed(b"a\n" + b"y" * (MAX_LINE + 1))
        assert (b"", True) == (framer.flush(), framer.skimmed is not None)


def skim_of(text: bytes, piece: int = 1000, keep: int = 64) -> Skim:
    skim = Skim(keep)
    for i in range(0, len(text), piece):
        skim.feed(text[i : i + piece])
    return skim


class TestSkim:
    @given(st.integers(1, 5000), st.integers(1, 700))
    def test_numbers_in_the_middle(self, count: int, piece: int) -> None:
        """A long number list joins into valid JSON keeping every other field."""
        numbers = [i * 37 % 1000 - 500 for i in range(count)]
        text = json.dumps({"done": True, "context": numbers, "eval_count": 10}).encode()
        obj = json.loads(skim_of(text, piece).joined() or b"")
        assert (True, 10) == (obj["done"], obj["eval_count"])
        kept = obj["context"]  # whole numbers from both ends, in order
        front = next(
            (i for i, (a, b) in enumerate(zip(kept, numbers, strict=False)) if a != b), len(kept)
        )
        assert kept[front:] == numbers[len(numbers) - (len(kept) - front) :]

    @given(st.text(min_size=0, max_size=3000), st.integers(1, 700))
    def test_one_string_in_the_middle(self, text: str, piece: int) -> None:
        """A long string (escapes, any Unicode) joins into valid JSON around it."""
        body = json.dumps({"message": {"content": text, "tool_calls": [1]}, "done": True})
        obj = json.loads(skim_of(body.encode(), piece).joined() or b"")
        assert ([1], True) == (obj["message"]["tool_calls"], obj["done"])

    def test_escaped_quotes_cut_anywhere(self) -> None:
        """Escaped quotes split between pieces still count as inside the string."""
        body = json.dumps({"content": 'a "b" \\ c' * 300, "done": True}).encode()
        for piece in range(1, 12):
            obj = json.loads(skim_of(body, piece).joined() or b"")
            assert obj["done"] is True

    def test_structure_in_the_middle(self) -> None:
        """When the middle holds structure, the ends do not join."""
        body = json.dumps({"a": ["x"] * 500, "b": 1}).encode()
        assert skim_of(body).joined() is None


class TestBodyBuffer:
    def test_small_body_kept_whole(self) -> None:
        """Under the limit the body is kept exactly."""
        buffer = BodyBuffer(limit=10)
        for part in (b"abc", b"def"):
            buffer.feed(part)
        assert b"abcdef" == buffer.whole

    def test_large_body_keeps_head_and_tail(self) -> None:
        """Over the limit only both ends are kept."""
        buffer = BodyBuffer(limit=4)
        for part in (b"0123", b"4567", b"89"):
            buffer.feed(part)
        assert (None, b"0123", b"6789", 10) == (
            buffer.whole,
            buffer.head,
            buffer.tail,
            buffer.size,
        )
