"""Sans-I/O framing: any chunk split gives the same lines; memory stays bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otel_llm._framing import MAX_PARTIAL_LINE, BodyBuffer, LineFramer


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

    def test_overlong_line_dropped(self) -> None:
        """A line longer than the cap is dropped, so a stream with no newline cannot grow us."""
        framer = LineFramer()
        for _ in range(3):
            assert b"" == framer.feed(b"x" * (MAX_PARTIAL_LINE // 2 + 1))
        assert 1 <= framer.dropped
        assert b"ok\n" == framer.feed(b"\nok\n")[-3:]


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
