"""The proxy's pure parts: configuration, hop-by-hop header rules, bearer auth, error bodies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from otel_llm.proxy.app import route_of
from otel_llm.proxy.auth import BearerAuth
from otel_llm.proxy.config import (
    ConfigError,
    ProxyConfig,
    parse_address,
    parse_args,
    parse_size,
    parse_upstream,
)
from otel_llm.proxy.forward import error_body
from otel_llm.proxy.headers import request_headers, response_headers
from otel_llm.proxy.protocol import _Coalescing


class TestConfig:
    def test_defaults(self) -> None:
        """No flags, no environment: loopback, Ollama's default port upstream, auth off."""
        config = parse_args([], {})
        assert (
            ("127.0.0.1", 11435),
            "http://127.0.0.1:11434",
            ("127.0.0.1", 9465),
            False,
            32 * 1024 * 1024,
        ) == (config.listen, config.upstream, config.admin, config.auth, config.max_body)

    def test_environment(self, tmp_path: Path) -> None:
        """Every setting can come from OTEL_LLM_PROXY_* variables."""
        tokens = tmp_path / "tokens"
        tokens.write_text("# clients\nalpha\n\n  beta  \n")
        env = {
            "OTEL_LLM_PROXY_LISTEN": "127.0.0.1:8000",
            "OTEL_LLM_PROXY_UPSTREAM": "http://10.0.0.5:11434/",
            "OTEL_LLM_PROXY_ADMIN": "off",
            "OTEL_LLM_PROXY_TOKENS": "gamma, alpha",
            "OTEL_LLM_PROXY_TOKEN_FILE": str(tokens),
            "OTEL_LLM_PROXY_MAX_BODY": "1MiB",
            "OTEL_LLM_PROXY_TIMEOUT": "30",
            "OTEL_LLM_PROXY_ACCESS_LOG": "false",
        }
        config = parse_args([], env)
        assert (
            ("127.0.0.1", 8000),
            "http://10.0.0.5:11434",
            None,
            ("gamma", "alpha", "beta"),
            1024 * 1024,
            30.0,
            False,
        ) == (
            config.listen,
            config.upstream,
            config.admin,
            config.tokens,
            config.max_body,
            config.timeout,
            config.access_log,
        )

    def test_flags_win(self) -> None:
        """A flag overrides its environment variable."""
        env = {"OTEL_LLM_PROXY_LISTEN": "127.0.0.1:8000", "OTEL_LLM_PROXY_UPSTREAM": "h:1"}
        config = parse_args(["--listen", ":9000", "--upstream", "https://ollama.internal"], env)
        assert (("127.0.0.1", 9000), "https://ollama.internal") == (config.listen, config.upstream)

    def test_client_limits_defaults(self) -> None:
        """Client limits default to nginx/Go-like values: 32 KiB head, 100 fields, 10 s for a
        head, 75 s idle, 60 s of body silence."""
        limits = parse_args([], {}).limits
        assert (32 * 1024, 100, 10.0, 75.0, 60.0) == (
            limits.max_header_bytes,
            limits.max_headers,
            limits.header_timeout,
            limits.idle_timeout,
            limits.body_timeout,
        )

    def test_client_limits_from_environment_and_flags(self) -> None:
        """Each client limit reads its variable; a flag wins over it."""
        env = {
            "OTEL_LLM_PROXY_MAX_HEADER_SIZE": "16KiB",
            "OTEL_LLM_PROXY_MAX_HEADERS": "50",
            "OTEL_LLM_PROXY_HEADER_TIMEOUT": "0.5",
            "OTEL_LLM_PROXY_IDLE_TIMEOUT": "30",
            "OTEL_LLM_PROXY_BODY_TIMEOUT": "20",
        }
        config = parse_args(["--max-headers", "64", "--idle-timeout", "5"], env)
        assert (16 * 1024, 64, 0.5, 5.0, 20.0) == (
            config.max_header_size,
            config.max_headers,
            config.header_timeout,
            config.idle_timeout,
            config.body_timeout,
        )

    def test_tokens_not_in_repr(self) -> None:
        """Token values never show in the config's repr (so never in a log of it)."""
        assert "hunter2" not in repr(ProxyConfig(tokens=("hunter2",)))

    @pytest.mark.parametrize(
        ("argv", "env"),
        [
            (["--upstream", "ftp://x"], {}),
            (["--upstream", "http://user:pw@x:1"], {}),
            (["--upstream", "http://x:1/?q=1"], {}),
            (["--listen", "127.0.0.1:99999"], {}),
            (["--listen", "127.0.0.1"], {}),
            (["--listen", "http://127.0.0.1:1"], {}),
            (["--max-body", "lots"], {}),
            (["--timeout", "-1"], {}),
            (["--max-header-size", "100"], {}),
            (["--max-headers", "0"], {}),
            (["--max-headers", "many"], {}),
            (["--header-timeout", "0"], {}),
            (["--idle-timeout", "-5"], {}),
            (["--body-timeout", "0"], {}),
            (["--listen", "127.0.0.1:11434"], {}),  # the proxy in front of itself
            (["--admin", "127.0.0.1:11435"], {}),
        ],
    )
    def test_refused(self, argv: list[str], env: dict[str, str]) -> None:
        """Unusable settings raise ConfigError with a message."""
        with pytest.raises(ConfigError):
            parse_args(argv, env)

    def test_empty_token_file_refused(self, tmp_path: Path) -> None:
        """A token file without a token is an error, not auth silently off."""
        path = tmp_path / "empty"
        path.write_text("# nothing\n")
        with pytest.raises(ConfigError):
            parse_args(["--token-file", str(path)], {})

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("127.0.0.1:1", ("127.0.0.1", 1)),
            ("localhost:2", ("127.0.0.1", 2)),
            (":3", ("127.0.0.1", 3)),
            ("0.0.0.0:4", ("0.0.0.0", 4)),
            ("[::1]:5", ("::1", 5)),
        ],
    )
    def test_address(self, text: str, expected: tuple[str, int]) -> None:
        """host:port forms; a missing host means loopback."""
        assert expected == parse_address(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("127.0.0.1", "http://127.0.0.1:11434"),
            ("ollama:11434", "http://ollama:11434"),
            ("http://ollama", "http://ollama"),
            ("https://gpu.example/ollama/", "https://gpu.example/ollama"),
        ],
    )
    def test_upstream(self, text: str, expected: str) -> None:
        """OLLAMA_HOST-style and URL upstreams normalise to one base URL."""
        assert expected == parse_upstream(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("0", 0), ("1024", 1024), ("32MiB", 32 << 20), ("2k", 2000), ("1.5 GiB", 3 << 29)],
    )
    def test_size(self, text: str, expected: int) -> None:
        """Sizes in bytes, SI or binary units."""
        assert expected == parse_size(text)


class TestHeaders:
    def test_hop_by_hop_dropped(self) -> None:
        """RFC 9110 §7.6.1 fields and those named in Connection stop at the proxy."""
        incoming = [
            (b"host", b"127.0.0.1:11435"),
            (b"connection", b"keep-alive, X-Trace-Hop"),
            (b"x-trace-hop", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-authorization", b"Basic eA=="),
            (b"te", b"trailers"),
            (b"upgrade", b"h2c"),
            (b"expect", b"100-continue"),
            (b"transfer-encoding", b"chunked"),
            (b"traceparent", b"00-1-2-01"),
            (b"x-keep", b"a"),
            (b"x-keep", b"b"),
        ]
        expected = [
            (b"traceparent", b"00-1-2-01"),
            (b"x-keep", b"a"),
            (b"x-keep", b"b"),
            (b"via", b"1.1 otel-llm"),
        ]
        assert expected == request_headers(incoming)

    def test_authorization_kept_unless_consumed(self) -> None:
        """Authorization passes through, unless the proxy checked it as its own token."""
        incoming = [(b"authorization", b"Bearer t")]
        assert ([(b"authorization", b"Bearer t")], []) == (
            request_headers(incoming)[:-1],
            request_headers(incoming, strip_authorization=True)[:-1],
        )

    def test_via_names_client_protocol(self) -> None:
        """Via records the protocol version the client spoke."""
        assert (b"via", b"1.0 otel-llm") == request_headers([], http_version="1.0")[-1]

    def test_response_keeps_end_to_end(self) -> None:
        """Content-Length and everything end-to-end stay; framing and Connection go."""
        upstream = [
            (b"Content-Type", b"application/x-ndjson"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Connection", b"close, X-Internal"),
            (b"X-Internal", b"secret"),
            (b"Content-Length", b"12"),
            (b"Date", b"Mon"),
        ]
        expected = [
            (b"Content-Type", b"application/x-ndjson"),
            (b"Content-Length", b"12"),
            (b"Date", b"Mon"),
        ]
        assert expected == response_headers(upstream)


class TestBearerAuth:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ([(b"authorization", b"Bearer alpha")], True),
            ([(b"authorization", b"bearer beta")], True),
            ([(b"authorization", b"Bearer  alpha ")], True),
            ([(b"authorization", b"Bearer alph")], False),
            ([(b"authorization", b"Basic YWxwaGE=")], False),
            ([(b"authorization", b"alpha")], False),
            ([], False),
            ([(b"authorization", b"Bearer alpha"), (b"authorization", b"Bearer beta")], False),
        ],
    )
    def test_allows(self, headers: list[tuple[bytes, bytes]], expected: bool) -> None:
        """Exactly one Bearer header with a known token passes."""
        assert expected == BearerAuth(["alpha", "beta"]).allows(headers)

    def test_off_allows_all(self) -> None:
        """No tokens configured: auth is off."""
        auth = BearerAuth([])
        assert (False, True) == (auth.enabled, auth.allows([]))

    def test_repr_hides_tokens(self) -> None:
        """The repr counts tokens and shows none."""
        assert "BearerAuth(<2 tokens>)" == repr(BearerAuth(["alpha", "beta"]))


class TestErrorsAndRoutes:
    def test_error_body_is_ollama_shaped(self) -> None:
        """Errors are compact ``{"error": ...}`` JSON, escaped properly."""
        body = error_body('upstream "x"\n\\ failed')
        assert ({"error": 'upstream "x"\n\\ failed'}, b'{"error":') == (
            json.loads(body),
            body[:9],
        )

    @pytest.mark.parametrize(
        ("path", "route"),
        [
            ("/api/chat", "/api/chat"),
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/api/blobs/sha256:abc", "/api/blobs/{digest}"),
            ("/v1/models/llama3.2", "/v1/models/{model}"),
            ("/random/thing", None),
        ],
    )
    def test_route(self, path: str, route: str | None) -> None:
        """Only Ollama's own routes become ``http.route`` (bounded cardinality)."""
        assert route == route_of(path)


class _Recorder:
    """A transport stand-in that records each write (each would be one syscall)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


class TestCoalescing:
    def _run(self, steps: Any) -> list[bytes]:
        async def main() -> list[bytes]:
            inner = _Recorder()
            writer = _Coalescing(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
            steps(writer)
            await asyncio.sleep(0)  # one loop turn
            await asyncio.sleep(0)
            return inner.writes

        return asyncio.run(main())

    def test_head_and_body_leave_together(self) -> None:
        """A head followed by its body in the same turn is one write."""
        writes = self._run(lambda w: (w.write(b"HEAD"), w.write(b"BODY"), w.write(b"")))
        assert [b"HEADBODY"] == writes

    def test_lone_head_flushed_by_end_of_turn(self) -> None:
        """A head whose body is not there yet still leaves within the turn."""
        assert [b"HEAD"] == self._run(lambda w: w.write(b"HEAD"))

    def test_body_chunks_are_not_held(self) -> None:
        """After the head, every chunk is written at once, in order."""
        writes = self._run(lambda w: [w.write(c) for c in (b"H", b"a", b"b", b"c")])
        assert [b"Ha", b"b", b"c"] == writes

    def test_close_flushes(self) -> None:
        """Closing right after a held head still sends it first."""

        def steps(writer: Any) -> None:
            writer.write(b"HEAD")
            writer.close()

        assert [b"HEAD"] == self._run(steps)
