"""What the sidecar proxy costs: through ``otel-llm proxy`` versus straight to the same mock.

Not part of the test suite. Three processes on this machine: the mock Ollama, the proxy
(default settings: access log on, spans exported by OTLP/HTTP to a local sink process),
and this load generator (a minimal asyncio HTTP/1.1 client on uvloop, so the client adds
as little noise as possible). Direct and proxied requests are interleaved in batches.

    .venv/bin/python bench/proxy.py             # the proxy as shipped (uvicorn)
    .venv/bin/python bench/proxy.py --servers   # also uvicorn h11/asyncio and granian
    .venv/bin/python bench/proxy.py --quick     # fewer requests, shorter runs

Reports: added p50/p99 latency of non-streaming calls, added time to first chunk of
streams, throughput at 1, 16 and 64 concurrent streams (paced like a model at 50 tokens/s,
and unpaced: the mock as fast as it can), and the proxy's CPU time per request (its
process tree's user+system time, from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")

WORDS = " ".join(f"w{i}" for i in range(25))  # 25 tokens a reply
MOCK = f"""
import sys, time
from otel_llm.testing.mock_ollama import MockOllama, Scenario
scenarios = {{
    "fast": Scenario(reply={WORDS!r}),
    "paced": Scenario(reply={WORDS!r}, chunk_delay=0.02),
}}
mock = MockOllama(scenarios, port=int(sys.argv[1])).start()
print(mock.url, flush=True)
while True:
    time.sleep(3600)
"""
SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def granian_app() -> Any:
    """Factory for granian (``--servers``): the same ProxyApp, configured from the environment."""
    from otel_llm.proxy.app import ProxyApp
    from otel_llm.proxy.config import parse_args
    from otel_llm.proxy.server import setup_telemetry

    config = parse_args([])
    telemetry = setup_telemetry(config)
    return ProxyApp(
        config,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def process(args: Sequence[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``args`` until the block ends; yields its pid once ``port`` accepts."""
    proc = subprocess.Popen(
        list(args),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port, proc)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and its descendants (granian runs workers as children)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


def servers(upstream: str, port: int, sink: int, which: Sequence[str]) -> list[Server]:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink}",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LLM_PROXY_UPSTREAM": upstream,
        "OTEL_LLM_PROXY_LISTEN": f"127.0.0.1:{port}",
        "OTEL_LLM_PROXY_ADMIN": "off",
    }
    cli = [PY, "-m", "otel_llm.cli", "proxy"]
    out = []
    if "uvicorn" in which:
        out.append(Server("uvicorn httptools+uvloop", cli, env))
    if "uvicorn-h11" in which:
        out.append(Server("uvicorn h11+asyncio", [*cli, "--http", "h11", "--loop", "asyncio"], env))
    if "granian" in which and shutil.which("granian", path=str(Path(PY).parent)):
        granian = str(Path(PY).parent / "granian")
        args = [granian, "--interface", "asgi", "--factory", "--host", "127.0.0.1"]
        args += ["--port", str(port), "--workers", "1", "--loop", "uvloop", "--no-ws"]
        args += ["--no-log", "--working-dir", str(ROOT / "bench"), "proxy:granian_app"]
        out.append(Server("granian (rust http, uvloop)", args, env))
    return out


# --- the client -----------------------------------------------------------------------


@dataclass
class Result:
    status: int
    ttft: float  # seconds to the first body byte
    total: float
    chunks: int


class Conn:
    """One keep-alive HTTP/1.1 connection; reads chunked and length-framed bodies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: bytes) -> Result:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.reader, self.writer
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        start = time.perf_counter()
        writer.write(head + body)
        block = await reader.readuntil(b"\r\n\r\n")
        status = int(block.split(b" ", 2)[1])
        headers = block.lower()
        ttft = 0.0
        chunks = 0
        if b"transfer-encoding: chunked" in headers:
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                if size == 0:
                    await reader.readexactly(2)
                    break
                await reader.readexactly(size + 2)
                chunks += 1
                if not ttft:
                    ttft = time.perf_counter() - start
        else:
            length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            ttft = time.perf_counter() - start
            chunks = 1
        return Result(status, ttft, time.perf_counter() - start, chunks)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def payload(model: str, stream: bool) -> bytes:
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    return json.dumps({"model": model, "messages": messages, "stream": stream}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(ports: dict[str, int], body: bytes, n: int, batch: int = 50) -> dict[str, Any]:
    """``n`` requests to each target on one keep-alive connection, interleaved in batches."""
    conns = {name: Conn(port) for name, port in ports.items()}
    samples: dict[str, list[Result]] = {name: [] for name in ports}
    for conn in conns.values():  # warm up
        for _ in range(20):
            await conn.request("/api/chat", body)
    for _ in range(0, n, batch):
        for name, conn in conns.items():
            for _ in range(batch):
                samples[name].append(await conn.request("/api/chat", body))
    for conn in conns.values():
        conn.close()
    return samples


async def throughput(
    port: int, body: bytes, concurrency: int, seconds: float
) -> tuple[float, float]:
    """Streams and chunks completed per second by ``concurrency`` looping clients."""
    stop = time.perf_counter() + seconds
    done = [0, 0]

    async def worker() -> None:
        conn = Conn(port)
        try:
            while time.perf_counter() < stop:
                result = await conn.request("/api/chat", body)
                done[0] += 1
                done[1] += result.chunks
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return done[0] / elapsed, done[1] / elapsed


# --- the run --------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


async def measure(proxy_pid: int, ports: dict[str, int], quick: bool) -> dict[str, Any]:
    n = 400 if quick else 2000
    seconds = 2.0 if quick else 4.0
    out: dict[str, Any] = {}
    before = cpu_seconds(proxy_pid)
    unary = await sequential(ports, payload("fast", False), n)
    cpu = cpu_seconds(proxy_pid) - before
    out["unary"] = {
        name: {
            "p50": pct([r.total for r in rs], 0.5),
            "p99": pct([r.total for r in rs], 0.99),
            "mean": statistics.fmean(r.total for r in rs),
        }
        for name, rs in unary.items()
    }
    out["cpu_per_unary"] = cpu / (len(unary["proxy"]) + 20)
    streams = await sequential(ports, payload("fast", True), n // 2)
    out["ttft"] = {
        name: {"p50": pct([r.ttft for r in rs], 0.5), "p99": pct([r.ttft for r in rs], 0.99)}
        for name, rs in streams.items()
    }
    out["throughput"] = {}
    for model in ("paced", "fast"):
        for concurrency in (1, 16, 64):
            row = {}
            for name, port in ports.items():
                before = cpu_seconds(proxy_pid)
                rate, chunk_rate = await throughput(
                    port, payload(model, True), concurrency, seconds
                )
                row[name] = rate
                if name == "proxy":
                    used = cpu_seconds(proxy_pid) - before
                    row["cpu_per_stream"] = used / max(1.0, rate * seconds)
                    row["cpu_share"] = used / seconds
                    row["chunk_rate"] = chunk_rate
            out["throughput"][f"{model} x{concurrency}"] = row
    return out


def report(name: str, r: dict[str, Any]) -> str:
    u, t = r["unary"], r["ttft"]
    lines = [
        f"### {name}",
        "",
        "| measure | direct | proxy | added |",
        "|---|---:|---:|---:|",
    ]
    for key in ("p50", "p99"):
        d, p = u["direct"][key], u["proxy"][key]
        lines.append(f"| non-streaming latency {key} (ms) | {ms(d)} | {ms(p)} | {ms(p - d)} |")
    for key in ("p50", "p99"):
        d, p = t["direct"][key], t["proxy"][key]
        lines.append(f"| time to first chunk {key} (ms) | {ms(d)} | {ms(p)} | {ms(p - d)} |")
    lines.append(f"| proxy CPU per non-streaming call (ms) | | {ms(r['cpu_per_unary'])} | |")
    lines += [
        "",
        "| streams (25 chunks each) | direct streams/s | proxy streams/s | ratio | proxy CPU per"
        " stream (ms) | proxy CPU (cores) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in r["throughput"].items():
        ratio = row["proxy"] / row["direct"] if row["direct"] else 0.0
        lines.append(
            f"| {label} | {row['direct']:.1f} | {row['proxy']:.1f} | {ratio:.0%} |"
            f" {ms(row['cpu_per_stream'])} | {row['cpu_share']:.2f} |"
        )
    return "\n".join(lines)


def run(coro: Any) -> Any:
    """On uvloop when installed: the client should cost as little as possible."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    parser.add_argument("--servers", action="store_true", help="compare uvicorn and granian")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    which = ["uvicorn", "uvicorn-h11", "granian"] if args.servers else ["uvicorn"]
    mock_port, sink_port, proxy_port = free_port(), free_port(), free_port()
    results: dict[str, Any] = {}
    print(f"# proxy benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]})\n")
    with (
        process([PY, "-c", MOCK, str(mock_port)], mock_port),
        process([PY, "-c", SINK, str(sink_port)], sink_port),
    ):
        upstream = f"http://127.0.0.1:{mock_port}"
        for server in servers(upstream, proxy_port, sink_port, which):
            with process(server.args, proxy_port, server.env) as pid:
                ports = {"direct": mock_port, "proxy": proxy_port}
                result = run(measure(pid, ports, args.quick))
            results[server.name] = result
            print(report(server.name, result), "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
