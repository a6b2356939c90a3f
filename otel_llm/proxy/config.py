"""The proxy's settings: flags win over ``OTEL_LLM_PROXY_*`` variables, which win over defaults.

Resolved once at start-up into a frozen ``ProxyConfig``; nothing on the request path
reads the environment. Token values are kept out of ``repr`` so they never reach a log.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from otel_llm.proxy.protocol import Limits

__all__ = [
    "DEFAULT_ADMIN",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_UPSTREAM",
    "ConfigError",
    "ProxyConfig",
    "parse_address",
    "parse_args",
    "parse_size",
    "parse_upstream",
]

DEFAULT_LISTEN = "127.0.0.1:11435"
DEFAULT_UPSTREAM = "http://127.0.0.1:11434"
DEFAULT_ADMIN = "127.0.0.1:9465"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
# Client limits, in line with common servers: nginx reads a head in 4 x 8 KiB buffers
# (32 KiB) and closes idle keep-alive connections after 75 s; Go's and Apache's servers
# cap a request at 100 header fields; a head must arrive within 10 s (Go's
# ReadHeaderTimeout as usually set; nginx waits 60 s).
DEFAULT_MAX_HEADER_SIZE = 32 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 75.0
DEFAULT_BODY_TIMEOUT = 60.0  # nginx's client_body_timeout

# Environment variables (each mirrors the flag of the same name).
ENV_LISTEN = "OTEL_LLM_PROXY_LISTEN"
ENV_UPSTREAM = "OTEL_LLM_PROXY_UPSTREAM"
ENV_ADMIN = "OTEL_LLM_PROXY_ADMIN"
ENV_TOKENS = "OTEL_LLM_PROXY_TOKENS"
ENV_TOKEN_FILE = "OTEL_LLM_PROXY_TOKEN_FILE"
ENV_MAX_BODY = "OTEL_LLM_PROXY_MAX_BODY"
ENV_MAX_HEADER_SIZE = "OTEL_LLM_PROXY_MAX_HEADER_SIZE"
ENV_MAX_HEADERS = "OTEL_LLM_PROXY_MAX_HEADERS"
ENV_HEADER_TIMEOUT = "OTEL_LLM_PROXY_HEADER_TIMEOUT"
ENV_IDLE_TIMEOUT = "OTEL_LLM_PROXY_IDLE_TIMEOUT"
ENV_BODY_TIMEOUT = "OTEL_LLM_PROXY_BODY_TIMEOUT"
ENV_CONNECT_TIMEOUT = "OTEL_LLM_PROXY_CONNECT_TIMEOUT"
ENV_TIMEOUT = "OTEL_LLM_PROXY_TIMEOUT"
ENV_SHUTDOWN_TIMEOUT = "OTEL_LLM_PROXY_SHUTDOWN_TIMEOUT"
ENV_LOG_FORMAT = "OTEL_LLM_PROXY_LOG_FORMAT"
ENV_ACCESS_LOG = "OTEL_LLM_PROXY_ACCESS_LOG"
ENV_HTTP = "OTEL_LLM_PROXY_HTTP"
ENV_LOOP = "OTEL_LLM_PROXY_LOOP"

_OFF = {"", "off", "none", "false", "0", "no"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


class ConfigError(ValueError):
    """A setting that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything the proxy needs to run, resolved once."""

    listen: tuple[str, int] = ("127.0.0.1", 11435)
    """Where clients connect (loopback unless told otherwise; port 0 picks a free one)."""
    upstream: str = DEFAULT_UPSTREAM
    """The one server every request goes to: ``scheme://host:port[/prefix]``."""
    admin: tuple[str, int] | None = ("127.0.0.1", 9465)
    """``/metrics``, ``/healthz``, ``/readyz``; None turns the admin port off."""
    tokens: tuple[str, ...] = field(default=(), repr=False)
    """Bearer tokens clients must present; empty means no client auth."""
    max_body: int = DEFAULT_MAX_BODY
    """Largest request body in bytes (413 beyond); 0 means no limit."""
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    """Largest request head (request line and headers) in bytes (431 beyond)."""
    max_headers: int = DEFAULT_MAX_HEADERS
    """Most header fields in a request (431 beyond)."""
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds a client gets to send a whole request head (408, or a close, beyond)."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds an idle keep-alive client connection stays open."""
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    """Seconds a request body may go without a byte (408 beyond)."""
    connect_timeout: float = 10.0
    """Seconds to connect to the upstream before answering 502... 504."""
    timeout: float = 600.0
    """Seconds the upstream may stay silent (before its headers or between chunks)."""
    shutdown_timeout: float = 30.0
    """On SIGTERM/SIGINT, seconds in-flight streams get to finish before they are cut."""
    log_format: str = "json"
    """Access log rendering: ``json`` or ``console``."""
    access_log: bool = True
    """One structured log line per request."""
    http: str = "auto"
    """uvicorn HTTP implementation: ``auto`` (httptools if installed), ``httptools``, ``h11``."""
    loop: str = "auto"
    """Event loop: ``auto`` (uvloop if installed), ``uvloop``, ``asyncio``."""

    @property
    def auth(self) -> bool:
        return bool(self.tokens)

    @property
    def limits(self) -> Limits:
        """What one client connection may take, for the HTTP protocol."""
        return Limits(
            self.max_header_size,
            self.max_headers,
            self.header_timeout,
            self.idle_timeout,
            self.body_timeout,
        )

    @property
    def listen_url(self) -> str:
        return "http://" + _join(*self.listen)

    @property
    def admin_url(self) -> str | None:
        return None if self.admin is None else "http://" + _join(*self.admin)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(value: str, *, what: str = "address") -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (loopback) as ``(host, port)``."""
    text = value.strip()
    if "://" in text:
        raise ConfigError(f"{what} {value!r}: give host:port, not a URL")
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"{what} {value!r}: expected [host]:port")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ConfigError(f"{what} {value!r}: expected host:port")
    host = host or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{what} {value!r}: port must be a number") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{what} {value!r}: port out of range")
    return host, number


def parse_upstream(value: str) -> str:
    """A normalised upstream base URL: http(s), a host, no credentials, query or fragment."""
    text = value.strip()
    bare = "://" not in text
    if bare:
        text = "http://" + text  # OLLAMA_HOST style: 127.0.0.1 or 127.0.0.1:11434
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"upstream {value!r}: scheme must be http or https")
    if not parts.hostname:
        raise ConfigError(f"upstream {value!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("upstream: credentials in the URL are not supported")
    if parts.query or parts.fragment:
        raise ConfigError(f"upstream {value!r}: no query or fragment allowed")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"upstream {value!r}: bad port") from None
    netloc = parts.netloc
    if bare and port is None:
        netloc += ":11434"  # Ollama's port, as Ollama reads OLLAMA_HOST
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def parse_size(value: str) -> int:
    """``33554432``, ``32MiB``, ``32M``, ``0`` (no limit) as bytes."""
    match = _SIZE.match(value)
    if match is None:
        raise ConfigError(f"size {value!r}: expected bytes, e.g. 33554432 or 32MiB")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = unit[:1]
    scale = 1024 ** {"k": 1, "m": 2, "g": 3}[base] if "i" in unit else _UNITS[base]
    return int(number * scale)


def _read_tokens(path: str) -> list[str]:
    """One token a line; blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"token file {path!r}: {exc.strerror or exc}") from None
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} {value!r}: expected seconds") from None
    if number <= 0:
        raise ConfigError(f"{name} {value!r}: must be positive")
    return number


def _count(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} {value!r}: expected a whole number") from None
    if number <= 0:
        raise ConfigError(f"{name} {value!r}: must be positive")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-llm proxy",
        description=(
            "A sidecar in front of Ollama: every call through it becomes an OpenTelemetry "
            "GenAI span (continuing the caller's trace) and GenAI metrics."
        ),
        epilog="Each flag also reads an OTEL_LLM_PROXY_* variable; see docs/proxy.md.",
    )
    add = parser.add_argument
    add("--listen", help=f"host:port for clients (${ENV_LISTEN}; {DEFAULT_LISTEN})")
    add("--upstream", help=f"the Ollama server (${ENV_UPSTREAM}; {DEFAULT_UPSTREAM})")
    add(
        "--admin",
        help=f"host:port for /metrics, /healthz, /readyz, or 'off' (${ENV_ADMIN}; {DEFAULT_ADMIN})",
    )
    add("--token-file", help=f"bearer tokens clients must send, one a line (${ENV_TOKEN_FILE})")
    add("--max-body", help=f"largest request body, e.g. 32MiB; 0 = no limit (${ENV_MAX_BODY})")
    add(
        "--max-header-size",
        help=f"largest request head, e.g. 32KiB (${ENV_MAX_HEADER_SIZE}; 32KiB)",
    )
    add("--max-headers", help=f"most header fields a request (${ENV_MAX_HEADERS}; 100)")
    add(
        "--header-timeout",
        help=f"seconds a client gets to send a request head (${ENV_HEADER_TIMEOUT}; 10)",
    )
    add(
        "--idle-timeout",
        help=f"seconds an idle client connection stays open (${ENV_IDLE_TIMEOUT}; 75)",
    )
    add(
        "--body-timeout",
        help=f"seconds a request body may go without a byte (${ENV_BODY_TIMEOUT}; 60)",
    )
    add("--connect-timeout", help=f"seconds to connect upstream (${ENV_CONNECT_TIMEOUT}; 10)")
    add("--timeout", help=f"seconds the upstream may stay silent (${ENV_TIMEOUT}; 600)")
    add(
        "--shutdown-timeout",
        help=f"seconds in-flight streams get on shutdown (${ENV_SHUTDOWN_TIMEOUT}; 30)",
    )
    add(
        "--log-format",
        choices=("json", "console"),
        help=f"access log format (${ENV_LOG_FORMAT}; json)",
    )
    add(
        "--no-access-log",
        action="store_true",
        help=f"no per-request log line (${ENV_ACCESS_LOG}=false)",
    )
    add("--http", choices=("auto", "httptools", "h11"), help=f"HTTP parser (${ENV_HTTP}; auto)")
    add("--loop", choices=("auto", "uvloop", "asyncio"), help=f"event loop (${ENV_LOOP}; auto)")
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Flags, then environment, then defaults. Raises ``ConfigError`` (or exits on ``--help``)."""
    env = os.environ if environ is None else environ
    args = _parser().parse_args(list(argv))

    def pick(flag: str | None, name: str, default: str) -> str:
        return flag if flag is not None else env.get(name, default)

    listen = parse_address(pick(args.listen, ENV_LISTEN, DEFAULT_LISTEN), what="listen")
    upstream = parse_upstream(pick(args.upstream, ENV_UPSTREAM, DEFAULT_UPSTREAM))
    admin_text = pick(args.admin, ENV_ADMIN, DEFAULT_ADMIN)
    admin = None if admin_text.strip().lower() in _OFF else parse_address(admin_text, what="admin")
    tokens = [t.strip() for t in env.get(ENV_TOKENS, "").split(",") if t.strip()]
    token_file = args.token_file or env.get(ENV_TOKEN_FILE)
    if token_file:
        tokens += _read_tokens(token_file)
        if not tokens:
            raise ConfigError(f"token file {token_file!r} holds no token")
    if any(any(c.isspace() for c in t) for t in tokens):
        raise ConfigError("tokens must not contain spaces")
    max_body = parse_size(pick(args.max_body, ENV_MAX_BODY, str(DEFAULT_MAX_BODY)))
    access = not args.no_access_log and env.get(ENV_ACCESS_LOG, "true").strip().lower() not in _OFF
    config = ProxyConfig(
        listen=listen,
        upstream=upstream,
        admin=admin,
        tokens=tuple(dict.fromkeys(tokens)),
        max_body=max_body,
        max_header_size=parse_size(
            pick(args.max_header_size, ENV_MAX_HEADER_SIZE, str(DEFAULT_MAX_HEADER_SIZE))
        ),
        max_headers=_count(
            "max headers", pick(args.max_headers, ENV_MAX_HEADERS, str(DEFAULT_MAX_HEADERS))
        ),
        header_timeout=_float(
            "header timeout",
            pick(args.header_timeout, ENV_HEADER_TIMEOUT, str(DEFAULT_HEADER_TIMEOUT)),
        ),
        idle_timeout=_float(
            "idle timeout", pick(args.idle_timeout, ENV_IDLE_TIMEOUT, str(DEFAULT_IDLE_TIMEOUT))
        ),
        body_timeout=_float(
            "body timeout", pick(args.body_timeout, ENV_BODY_TIMEOUT, str(DEFAULT_BODY_TIMEOUT))
        ),
        connect_timeout=_float(
            "connect timeout", pick(args.connect_timeout, ENV_CONNECT_TIMEOUT, "10")
        ),
        timeout=_float("timeout", pick(args.timeout, ENV_TIMEOUT, "600")),
        shutdown_timeout=_float(
            "shutdown timeout", pick(args.shutdown_timeout, ENV_SHUTDOWN_TIMEOUT, "30")
        ),
        log_format=pick(args.log_format, ENV_LOG_FORMAT, "json"),
        access_log=access,
        http=pick(args.http, ENV_HTTP, "auto"),
        loop=pick(args.loop, ENV_LOOP, "auto"),
    )
    check(config)
    return config


def check(config: ProxyConfig) -> None:
    """Refuse settings that cannot work (a proxy pointed at itself, clashing ports)."""
    if config.log_format not in ("json", "console"):
        raise ConfigError(f"log format {config.log_format!r}: json or console")
    if config.http not in ("auto", "httptools", "h11"):
        raise ConfigError(f"http {config.http!r}: auto, httptools or h11")
    if config.loop not in ("auto", "uvloop", "asyncio"):
        raise ConfigError(f"loop {config.loop!r}: auto, uvloop or asyncio")
    if config.max_body < 0:
        raise ConfigError("max body must be >= 0")
    if config.max_header_size < 1024:
        raise ConfigError("max header size must be at least 1KiB")
    if config.max_headers < 1:
        raise ConfigError("max headers must be positive")
    if min(config.header_timeout, config.idle_timeout, config.body_timeout) <= 0:
        raise ConfigError("header, body and idle timeouts must be positive")
    parts = urlsplit(config.upstream)
    host, port = config.listen
    if (
        port
        and parts.port == port
        and parts.hostname in (host, "localhost", "127.0.0.1")
        and host
        in (
            parts.hostname,
            "127.0.0.1",
            "0.0.0.0",
        )
    ):
        raise ConfigError(f"upstream {config.upstream} is this proxy's own address")
    if config.admin is not None and config.admin[1] and config.admin == config.listen:
        raise ConfigError("admin and listen addresses must differ")
