"""The proxy under hostile or broken clients: raw sockets on 127.0.0.1, both HTTP parsers.

Every refusal must be Ollama's ``{"error": ...}`` with the right status, must close the
connection (the client reads EOF, never a second answer), and must not reach the
upstream. Timeouts are set to half a second here; nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from otel_llm.proxy import ProxyConfig, ProxyServer
from otel_llm.testing.mock_ollama import MockOllama

LIMIT = 4096
TAGS = b"GET /api/tags HTTP/1.1\r\nHost: proxy\r\n"


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama() as server:
        yield server


@pytest.fixture(scope="module", params=["httptools", "h11"])
def proxy(request: pytest.FixtureRequest, mock: MockOllama) -> Iterator[ProxyServer]:
    config = ProxyConfig(
        listen=("127.0.0.1", 0),
        admin=None,
        upstream=mock.url,
        access_log=False,
        http=request.param,
        max_header_size=LIMIT,
        max_headers=20,
        header_timeout=0.5,
        idle_timeout=0.5,
        body_timeout=0.5,
    )
    with ProxyServer(config) as server:
        yield server


class Answer:
    """What a raw client read: every byte until the proxy closed, parsed."""

    def __init__(self, data: bytes, closed: bool) -> None:
        self.closed = closed
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ")[1]) if lines[0] else 0
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])
        }

    def error(self) -> Any:
        return json.loads(self.body).get("error") is not None


def connect(proxy: ProxyServer) -> socket.socket:
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_raw(sock: socket.socket, data: bytes = b"") -> tuple[bytes, bool]:
    """Bytes until EOF (closed) or until 5 s of silence (not closed)."""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        pass
    return data, True


def read_all(sock: socket.socket) -> Answer:
    return Answer(*read_raw(sock))


def send(proxy: ProxyServer, request: bytes) -> Answer:
    with connect(proxy) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # refused mid-send: the answer is still in our buffer
        return read_all(sock)


class TestHeadSize:
    def test_oversized_header_431(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """A 1 MiB header field: 431 in Ollama's shape, connection closed, nothing forwarded."""
        count = len(mock.requests)
        answer = send(proxy, TAGS + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        assert (431, True, True, "close", count) == (
            answer.status,
            answer.error(),
            answer.closed,
            answer.headers[b"connection"].decode(),
            len(mock.requests),
        )

    def test_head_within_limit_forwarded(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """A head just under the limit is served, so the limit is on the head, not more."""
        filler = b"X-Fill: " + b"a" * (LIMIT - len(TAGS) - 200) + b"\r\n"
        answer = send(proxy, TAGS + filler + b"Connection: close\r\n\r\n")
        assert (200, True) == (answer.status, "models" in json.loads(answer.body))

    def test_head_limit_split_across_packets(self, proxy: ProxyServer) -> None:
        """Bytes counted across reads: a head sent in small pieces is still capped."""
        with connect(proxy) as sock:
            sock.sendall(TAGS)
            try:
                for _ in range(2 * LIMIT // 512):
                    sock.sendall(b"X-Piece: " + b"p" * 500 + b"\r\n")
                    time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = read_all(sock)
        assert (431, True) == (answer.status, answer.closed)

    def test_too_many_headers_431(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """More header fields than allowed: 431, closed, nothing forwarded."""
        count = len(mock.requests)
        fields = b"".join(b"X-F%d: v\r\n" % i for i in range(30))
        answer = send(proxy, TAGS + fields + b"\r\n")
        assert (431, True, True, count) == (
            answer.status,
            answer.error(),
            answer.closed,
            len(mock.requests),
        )


class TestTimeouts:
    def test_slowloris_408(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """A head dripping in a byte at a time gets 408 and a closed connection."""
        count = len(mock.requests)
        with connect(proxy) as sock:
            sock.sendall(TAGS)
            sock.settimeout(0.05)
            data = b""
            for _ in range(400):  # a byte every 50 ms, for up to 20 s: far past the deadline
                try:
                    sock.sendall(b"X")
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    pass
                break
            answer = Answer(*read_raw(sock, data))
        assert (408, True, True, count) == (
            answer.status,
            answer.error(),
            answer.closed,
            len(mock.requests),
        )

    def test_silent_connection_closed(self, proxy: ProxyServer) -> None:
        """A connection that never sends a byte is closed, without an answer."""
        with connect(proxy) as sock:
            answer = read_all(sock)
        assert (True, 0) == (answer.closed, answer.status)

    def test_idle_keep_alive_closed(self, proxy: ProxyServer) -> None:
        """After an answer, an idle keep-alive connection is closed."""
        with connect(proxy) as sock:
            sock.sendall(TAGS + b"\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(Answer(data, True).headers[b"content-length"])
            while len(body) < length:
                body += sock.recv(65536)
            rest = read_all(sock)
        assert (200, True, b"") == (int(head.split(b" ")[1]), rest.closed, rest.body)


class TestRefusals:
    def test_content_length_with_chunked_400(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """CL + TE (RFC 9112 §6.1): 400, closed; the smuggled request is never parsed."""
        count = len(mock.requests)
        body = b'{"model":"m"}'
        smuggled = b"GET /api/version HTTP/1.1\r\nHost: proxy\r\n\r\n"
        request = (
            b"POST /api/show HTTP/1.1\r\nHost: proxy\r\nContent-Length: %d\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n%s"
            % (len(body) + 5, len(body), body, smuggled)
        )
        answer = send(proxy, request)
        assert (400, True, True, 0, count) == (
            answer.status,
            answer.error(),
            answer.closed,
            answer.body.count(b"HTTP/1.1"),  # one answer only: no second one
            len(mock.requests),
        )

    @pytest.mark.parametrize("target", [b"example.com:443", b"/api/tags"])
    def test_connect_405(self, proxy: ProxyServer, mock: MockOllama, target: bytes) -> None:
        """CONNECT: 405 with Allow, in Ollama's shape, closed, nothing forwarded."""
        count = len(mock.requests)
        answer = send(proxy, b"CONNECT " + target + b" HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        assert (405, True, True, True, count) == (
            answer.status,
            b"POST" in answer.headers[b"allow"],
            answer.error(),
            answer.closed,
            len(mock.requests),
        )

    def test_garbage_400(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """A request line that is not HTTP: 400 in Ollama's shape, closed."""
        count = len(mock.requests)
        answer = send(proxy, b"HELLO THERE\x00\x01\r\n\r\n")
        assert (400, True, True, count) == (
            answer.status,
            answer.error(),
            answer.closed,
            len(mock.requests),
        )

    def test_keep_alive_survives_good_requests(self, proxy: ProxyServer) -> None:
        """Two requests on one connection both get 200: the guard does not break reuse."""
        with connect(proxy) as sock:
            sock.sendall(TAGS + b"\r\n" + TAGS + b"Connection: close\r\n\r\n")
            answer = read_all(sock)
        whole = answer.body
        assert (200, True, 2) == (
            answer.status,
            answer.closed,
            1 + whole.count(b"HTTP/1.1 200"),
        )


class TestBodyTimeout:
    def test_stalled_body_408(self, proxy: ProxyServer, mock: MockOllama) -> None:
        """A body that stops arriving mid-way gets 408 and a closed connection; the LLM
        call it belonged to never reaches the upstream."""
        count = len(mock.requests)
        with connect(proxy) as sock:
            sock.sendall(
                b"POST /api/chat HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"model":'
            )
            answer = read_all(sock)
        assert (408, True, True, count) == (
            answer.status,
            answer.error(),
            answer.closed,
            len(mock.requests),
        )

    def test_slow_but_steady_body_served(self, proxy: ProxyServer) -> None:
        """A body sent in pieces, none of them late, is read whole and answered."""
        body = b'{"model":"llama3.2","messages":[],"stream":false}'
        with connect(proxy) as sock:
            sock.sendall(
                b"POST /api/chat HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for start in range(0, len(body), 10):
                sock.sendall(body[start : start + 10])
                time.sleep(0.1)  # 0.1 s gaps: the deadline (0.5 s) is per silence
            answer = read_all(sock)
        assert (200, True) == (answer.status, answer.closed)
