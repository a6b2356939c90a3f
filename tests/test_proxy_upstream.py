"""The proxy's upstream transport against scripted raw servers on 127.0.0.1.

Each server is a thread that accepts connections and runs a script on each: read a
request, write bytes, close, stay silent... so every framing and failure the transport
must handle (and the errors httpx's own transport raises for them) is real on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_llm.proxy.upstream import SINK, UpstreamTransport

Script = Callable[[socket.socket, int], None]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"


class Server:
    """Accepts connections on 127.0.0.1; runs ``script(conn, index)`` on each in a thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        with conn, contextlib.suppress(OSError):
            self.script(conn, index)

    def read_request(self, conn: socket.socket) -> bytes | None:
        """One whole request (head and body, by Content-Length or chunked), or None at EOF."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lower = head.lower()
        if b"content-length:" in lower:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(65536)
        elif b"transfer-encoding: chunked" in lower:
            while not body.endswith(b"0\r\n\r\n"):
                body += conn.recv(65536)
        request = head + b"\r\n\r\n" + body
        self.requests.append(request)
        return request

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Server]]:
    servers: list[Server] = []

    def start(script: Script) -> Server:
        server = Server(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client(timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=UpstreamTransport(), timeout=timeout)


async def get(http: httpx.AsyncClient, url: str, **kwargs: Any) -> tuple[int, bytes]:
    response = await http.request("GET", url, **kwargs)
    return response.status_code, response.content


def answer_each(server: Callable[[], Server], reply: bytes) -> Script:
    def script(conn: socket.socket, index: int) -> None:
        while server().read_request(conn) is not None:
            conn.sendall(reply)

    return script


class TestReuse:
    def test_sequential_requests_share_a_connection(self, serve: Any) -> None:
        """Three requests in a row travel on one kept-alive connection."""
        server = serve(answer_each(lambda: server, OK))

        async def main() -> list[tuple[int, bytes]]:
            async with client() as http:
                return [await get(http, server.url + "/") for _ in range(3)]

        assert ([(200, b"hello")] * 3, 1) == (asyncio.run(main()), server.connections)

    def test_idle_connection_closed_by_upstream_is_replaced(self, serve: Any) -> None:
        """An upstream that closes after each answer: every request still succeeds."""

        def script(conn: socket.socket, index: int) -> None:
            if server.read_request(conn) is not None:
                conn.sendall(OK)  # keep-alive by its headers, then closed anyway

        server = serve(script)

        async def main() -> list[tuple[int, bytes]]:
            async with client() as http:
                out = []
                for _ in range(3):
                    out.append(await get(http, server.url + "/"))
                    await asyncio.sleep(0.05)  # let the close arrive
                return out

        assert ([(200, b"hello")] * 3, 3) == (asyncio.run(main()), server.connections)

    def test_reused_connection_dying_before_answer_is_retried(self, serve: Any) -> None:
        """A kept-alive connection the upstream drops as the next request arrives (its idle
        timeout racing us): that request is sent again on a new connection."""

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)
            if index == 0:
                conn.sendall(OK)
                server.read_request(conn)  # then close without answering
                return
            conn.sendall(OK)

        server = serve(script)

        async def main() -> list[tuple[int, bytes]]:
            async with client() as http:
                return [await get(http, server.url + "/") for _ in range(2)]

        assert ([(200, b"hello")] * 2, 2) == (asyncio.run(main()), server.connections)

    def test_early_close_does_not_reuse(self, serve: Any) -> None:
        """A response closed before its end closes its connection; the next gets a new one."""
        big = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 1_000_000
        server = serve(answer_each(lambda: server, big))

        async def main() -> int:
            async with client() as http:
                async with http.stream("GET", server.url + "/") as response:
                    async for _ in response.aiter_raw():
                        break
                status, _ = await get(http, server.url + "/")
                return status

        assert (200, 2) == (asyncio.run(main()), server.connections)


class TestFraming:
    def test_chunked_response_streams(self, serve: Any) -> None:
        """A chunked body arrives chunk by chunk, de-chunked, and the sink sees each first."""
        reply = (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n"
        )
        server = serve(answer_each(lambda: server, reply))
        seen: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            seen.append(chunk)

        async def main() -> bytes:
            async with client() as http:
                request = http.build_request("GET", server.url + "/")
                request.extensions[SINK] = sink
                response = await http.send(request, stream=True)
                body = b"".join([c async for c in response.aiter_raw()])
                await response.aclose()
                return body

        body = asyncio.run(main())
        assert (b"onetwothree", b"onetwothree") == (body, b"".join(seen))

    def test_body_delimited_by_close(self, serve: Any) -> None:
        """No length, no chunking: the body runs to the close, and is complete."""

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")

        server = serve(script)

        async def main() -> tuple[int, bytes]:
            async with client() as http:
                return await get(http, server.url + "/")

        assert (200, b"until the end") == asyncio.run(main())

    def test_head_and_204_have_no_body(self, serve: Any) -> None:
        """HEAD (with a Content-Length) and 204 end at their head; the connection is reused."""
        replies = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ]

        def script(conn: socket.socket, index: int) -> None:
            for reply in replies:
                if server.read_request(conn) is None:
                    return
                conn.sendall(reply)

        server = serve(script)

        async def main() -> list[tuple[int, bytes]]:
            async with client() as http:
                head = await http.request("HEAD", server.url + "/")
                other = await get(http, server.url + "/")
                return [(head.status_code, head.content), other]

        assert [(200, b""), (204, b"")] == asyncio.run(main())

    def test_streamed_upload_is_chunked(self, serve: Any) -> None:
        """An upload of unknown length goes out chunked, each piece as produced."""
        server = serve(answer_each(lambda: server, OK))

        async def parts() -> AsyncIterator[bytes]:
            yield b"abc"
            yield b"defgh"

        async def main() -> int:
            async with client() as http:
                response = await http.request("POST", server.url + "/up", content=parts())
                return response.status_code

        status = asyncio.run(main())
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        assert (200, True, b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n") == (
            status,
            b"transfer-encoding: chunked" in head.lower(),
            body,
        )

    def test_bytes_body_with_head_in_one_request(self, serve: Any) -> None:
        """A bytes body goes out with its Content-Length, byte for byte."""
        server = serve(answer_each(lambda: server, OK))

        async def main() -> int:
            async with client() as http:
                response = await http.request("POST", server.url + "/api/chat", content=b"{}")
                return response.status_code

        status = asyncio.run(main())
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        assert (200, True, b"{}") == (status, b"content-length: 2" in head.lower(), body)


class TestFailures:
    def test_refused_connection_is_connect_error(self) -> None:
        """Nothing listening: ``httpx.ConnectError``."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()

        async def main() -> None:
            async with client() as http:
                await http.get(f"http://127.0.0.1:{port}/")

        with pytest.raises(httpx.ConnectError):
            asyncio.run(main())

    def test_silence_is_read_timeout(self, serve: Any) -> None:
        """No answer within the read timeout: ``httpx.ReadTimeout``."""
        done = threading.Event()

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)
            done.wait(5)

        server = serve(script)

        async def main() -> None:
            async with client(timeout=0.3) as http:
                await http.get(server.url + "/")

        try:
            with pytest.raises(httpx.ReadTimeout):
                asyncio.run(main())
        finally:
            done.set()

    def test_close_mid_body_is_protocol_error(self, serve: Any) -> None:
        """Fewer bytes than Content-Length, then a close: ``RemoteProtocolError``."""

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")

        server = serve(script)

        async def main() -> None:
            async with client() as http:
                await http.get(server.url + "/")

        with pytest.raises(httpx.RemoteProtocolError):
            asyncio.run(main())

    def test_garbage_is_protocol_error(self, serve: Any) -> None:
        """An answer that is not HTTP: ``RemoteProtocolError``."""

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

        server = serve(script)

        async def main() -> None:
            async with client() as http:
                await http.get(server.url + "/")

        with pytest.raises(httpx.RemoteProtocolError):
            asyncio.run(main())

    def test_new_connection_closed_before_answer_not_retried(self, serve: Any) -> None:
        """A new connection closed without an answer: ``RemoteProtocolError``, no retry
        (only a reused connection may have died of old age)."""

        def script(conn: socket.socket, index: int) -> None:
            server.read_request(conn)

        server = serve(script)

        async def main() -> None:
            async with client() as http:
                await http.get(server.url + "/")

        with pytest.raises(httpx.RemoteProtocolError):
            asyncio.run(main())
        assert 1 == server.connections


class TestTLS:
    def test_https_upstream(self, serve: Any, tmp_path: Path) -> None:
        """An ``https`` upstream is spoken to over TLS, its certificate verified."""
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("openssl is not installed")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        args = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        args += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        args += ["-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(
            args,
            check=True,
            capture_output=True,
        )
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)

        def script(conn: socket.socket, index: int) -> None:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                while server.read_request(tls) is not None:
                    tls.sendall(OK)

        server = serve(script)
        client_ctx = ssl.create_default_context(cafile=str(cert))

        async def main() -> list[tuple[int, bytes]]:
            transport = UpstreamTransport(client_ctx)
            async with httpx.AsyncClient(transport=transport, timeout=5) as http:
                url = server.url.replace("http://", "https://") + "/"
                return [await get(http, url) for _ in range(2)]

        assert ([(200, b"hello")] * 2, 1) == (asyncio.run(main()), server.connections)
