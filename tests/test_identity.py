"""The app reads the same bytes and sees the same exceptions with and without us (fuzzed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_llm
from otel_llm import _guard
from tests.conftest import Spans
from tests.wire import CHAT_BODY, NDJSON_CHAT, SSE_CHAT

PATHS = ["/api/chat", "/api/generate", "/api/embed", "/v1/chat/completions", "/v1/completions"]
CTYPES = [
    "application/x-ndjson",
    "text/event-stream",
    "application/json; charset=utf-8",
    "text/plain",
    "",
]
SEEDS = [b"".join(NDJSON_CHAT), b"".join(SSE_CHAT), CHAT_BODY, b""]

bodies = st.one_of(
    st.binary(max_size=600),
    st.sampled_from(SEEDS),
    st.tuples(st.sampled_from(SEEDS), st.binary(max_size=40), st.integers(0, 2000)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    ),
)
request_bodies = st.one_of(
    st.just(b'{"model":"llama3.2","messages":[],"stream":true}'),
    st.binary(max_size=80),
    st.just(b'{"model":5,"options":"nope","stream":"x","messages":{}}'),
)


def exchange(
    path: str,
    body: bytes,
    cuts: list[int],
    ctype: str,
    status: int,
    fail_after: int | None,
    request_body: bytes,
    how: str,
) -> tuple[Any, ...]:
    """One call through MockTransport; what the app observed."""
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]

    def stream() -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            if fail_after is not None and i == fail_after:
                raise httpx.ReadError("boom")
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": ctype} if ctype else {}
        return httpx.Response(status, headers=headers, content=stream())

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:11434")
    seen: list[Any] = []
    try:
        with client.stream("POST", path, content=request_body) as response:
            seen.append(response.status_code)
            if how == "read":
                seen.append(response.read())
            elif how == "lines":
                seen.extend(response.iter_lines())
            else:
                for i, piece in enumerate(response.iter_bytes()):
                    seen.append(piece)
                    if i == 1:
                        break
    except Exception as exc:  # the app's view of a failure
        seen.append((type(exc), str(exc)))
    return tuple(seen)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    ctype=st.sampled_from(CTYPES),
    status=st.sampled_from([200, 200, 200, 400, 404, 500]),
    fail_after=st.one_of(st.none(), st.integers(0, 4)),
    request_body=request_bodies,
    how=st.sampled_from(["read", "lines", "bytes"]),
)
def test_identical_with_and_without(
    collected: Spans,
    path: str,
    body: bytes,
    cuts: list[int],
    ctype: str,
    status: int,
    fail_after: int | None,
    request_body: bytes,
    how: str,
) -> None:
    """Random and malformed bodies, chunkings, content types, failures: same bytes, same errors."""
    args = (path, body, cuts, ctype, status, fail_after, request_body, how)
    otel_llm.uninstrument()
    bare = exchange(*args)
    failures_before = sum(_guard.failures.values())
    otel_llm.instrument()
    try:
        traced = exchange(*args)
    finally:
        otel_llm.uninstrument()
    assert bare == traced
    assert failures_before == sum(_guard.failures.values())
    ended = [s for s in collected.llm()]
    collected.clear()
    assert 1 == len(ended)


def test_huge_line_and_invalid_utf8(spans: Spans) -> None:
    """A 3 MB line with invalid UTF-8 passes through untouched and bounded."""
    body = b'{"model":"m","message":{"content":"' + b"\xff\xfe" * (3 << 19) + b'"}'
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "application/x-ndjson"}, content=iter(pieces)
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    response = client.post("http://127.0.0.1:11434/api/chat", json={"model": "m"})
    assert body == response.content
    assert "stream_incomplete" == spans.one().attributes["error.type"]


@pytest.mark.parametrize("how", ["read", "lines", "bytes"])
def test_reference_streams_identical(collected: Spans, how: str) -> None:
    """The reference NDJSON and SSE streams read the same instrumented or not."""
    for path, body, ctype in (
        ("/api/chat", b"".join(NDJSON_CHAT), "application/x-ndjson"),
        ("/v1/chat/completions", b"".join(SSE_CHAT), "text/event-stream"),
    ):
        args = (path, body, [7, 100, 333], ctype, 200, None, b'{"model":"m"}', how)
        bare = exchange(*args)
        otel_llm.instrument()
        traced = exchange(*args)
        otel_llm.uninstrument()
        assert bare == traced
