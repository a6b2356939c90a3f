"""What the sidecar proxy costs: through ``otel-llm proxy`` versus straight to the same mock.

Not part of the test suite. Three processes on this machine: the mock Ollama, the proxy
(default settings: access log on, spans exported by OTLP/HTTP to a local sink process),
and this load generator (a minimal asyncio HTTP/1.1 client on uvloop, so the client adds
as little noise as possible). Direct and proxied requests are interleaved in batches.

    .venv/bin/python bench/proxy.py             # the proxy as shipped (uvicorn)
    .venv/bin/python bench/proxy.py --servers   # also uvicorn h11/asyncio and granian
    .venv/bin/python bench/proxy.py --quick     # fewer requests, shorter runs
    .venv/bin/python bench/proxy.py --baseline DIR  # also an older tree, same rounds

Reports: added p50/p99 latency of non-streaming calls, added time to first chunk of
streams, throughput at 16 and 64 concurrent streams (paced like a model at 50 tokens/s,
and unpaced: the mock as fast as it can), and the proxy's CPU time per request (its
process tree's user+system time, from /proc). Targets take turns in rounds and each
figure is a median over rounds, so the machine's noise hits every target alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
def process(
    args: Sequence[str], port: int, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[int]:
    """Run ``args`` until the block ends; yields its pid once ``port`` accepts."""
    proc = subprocess.Popen(
        list(args),
        cwd=cwd,
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


async def sequential(
    ports: dict[str, int], body: bytes, n: int, batch: int = 50
) -> dict[str, list[list[Result]]]:
    """``n`` requests to each target on one keep-alive connection, in interleaved rounds.

    Each round sends ``batch`` requests to every target in turn (the order rotating), so
    noise from the other processes on the machine hits all targets alike; the report
    compares targets round by round.
    """
    conns = {name: Conn(port) for name, port in ports.items()}
    rounds: dict[str, list[list[Result]]] = {name: [] for name in ports}
    names = list(conns)
    for conn in conns.values():  # warm up
        for _ in range(20):
            await conn.request("/api/chat", body)
    for index in range(max(1, n // batch)):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            conn = conns[name]
            rounds[name].append([await conn.request("/api/chat", body) for _ in range(batch)])
    for conn in conns.values():
        conn.close()
    return rounds


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


def added(rounds: dict[str, list[list[Result]]], name: str, field: str) -> dict[str, float]:
    """Paired figures for ``name`` against ``direct``: the median over rounds of the
    round's p50 difference, and p99 over all requests (minus direct's)."""
    diffs = [
        statistics.median(getattr(r, field) for r in mine)
        - statistics.median(getattr(r, field) for r in direct)
        for mine, direct in zip(rounds[name], rounds["direct"], strict=True)
    ]
    every = [getattr(r, field) for batch in rounds[name] for r in batch]
    direct_all = [getattr(r, field) for batch in rounds["direct"] for r in batch]
    return {
        "p50": pct(every, 0.5),
        "p99": pct(every, 0.99),
        "added_p50": statistics.median(diffs),
        "added_p50_q1": pct(diffs, 0.25),
        "added_p50_q3": pct(diffs, 0.75),
        "added_p99": pct(every, 0.99) - pct(direct_all, 0.99),
    }


async def measure(pids: dict[str, int], ports: dict[str, int], quick: bool) -> dict[str, Any]:
    """Every figure for every target; ``pids`` are the proxies (CPU is read from /proc)."""
    n = 400 if quick else 2000
    seconds = 1.0 if quick else 2.0
    repeats = 3 if quick else 5
    out: dict[str, Any] = {"unary": {}, "ttft": {}, "cpu_per_unary": {}, "throughput": {}}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    unary = await sequential(ports, payload("fast", False), n)
    for name, pid in pids.items():
        calls = sum(len(b) for b in unary[name]) + 20
        out["cpu_per_unary"][name] = (cpu_seconds(pid) - before[name]) / calls
    streams = await sequential(ports, payload("fast", True), n // 2)
    for name in ports:
        out["unary"][name] = added(unary, name, "total")
        out["ttft"][name] = added(streams, name, "ttft")
    names = list(ports)
    for model in ("paced", "fast"):
        for concurrency in (16, 64):
            rates: dict[str, list[float]] = {name: [] for name in names}
            cpu: dict[str, list[float]] = {name: [] for name in pids}
            for index in range(repeats):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    start = cpu_seconds(pids[name]) if name in pids else 0.0
                    rate, _ = await throughput(
                        ports[name], payload(model, True), concurrency, seconds
                    )
                    rates[name].append(rate)
                    if name in pids:
                        used = cpu_seconds(pids[name]) - start
                        cpu[name].append(used / max(1.0, rate * seconds))
            row: dict[str, Any] = {name: statistics.median(v) for name, v in rates.items()}
            row["cpu_per_stream"] = {name: statistics.median(v) for name, v in cpu.items()}
            out["throughput"][f"{model} x{concurrency}"] = row
    return out


def report(name: str, r: dict[str, Any]) -> str:
    proxies = [p for p in r["unary"] if p != "direct"]
    lines = [
        f"### {name}",
        "",
        "Added = median over interleaved rounds of (round p50 through the proxy - round p50"
        " direct), with the interquartile range of the rounds; p99 over all requests.",
        "",
        "| measure | direct | " + " | ".join(proxies) + " |",
        "|---|---:|" + "---:|" * len(proxies),
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for key, title in (("unary", "non-streaming latency"), ("ttft", "time to first chunk")):
        d = r[key]["direct"]
        row(f"{title} p50 (ms)", [ms(d["p50"])] + [ms(r[key][p]["p50"]) for p in proxies])
        row(
            f"{title}: added p50 (ms) [IQR]",
            [""]
            + [
                f"**{ms(r[key][p]['added_p50'])}** [{ms(r[key][p]['added_p50_q1'])},"
                f" {ms(r[key][p]['added_p50_q3'])}]"
                for p in proxies
            ],
        )
        row(f"{title}: added p99 (ms)", [""] + [ms(r[key][p]["added_p99"]) for p in proxies])
    row(
        "proxy CPU per non-streaming call (ms)", [""] + [ms(r["cpu_per_unary"][p]) for p in proxies]
    )
    lines += [
        "",
        "| streams (25 chunks), median of rounds | direct streams/s | "
        + " | ".join(f"{p} streams/s (ratio, CPU ms/stream)" for p in proxies)
        + " |",
        "|---|---:|" + "---:|" * len(proxies),
    ]
    for label, t in r["throughput"].items():
        cells = [f"{t['direct']:.1f}"]
        for p in proxies:
            ratio = t[p] / t["direct"] if t["direct"] else 0.0
            cells.append(f"{t[p]:.1f} ({ratio:.0%}, {ms(t['cpu_per_stream'][p])})")
        row(label, cells)
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
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another source tree (e.g. a `git archive` of an older commit): its proxy is"
        " measured in the same interleaved rounds, as `baseline`",
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    which = ["uvicorn", "uvicorn-h11", "granian"] if args.servers else ["uvicorn"]
    mock_port, sink_port = free_port(), free_port()
    results: dict[str, Any] = {}
    print(f"# proxy benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]})\n")
    with (
        process([PY, "-c", MOCK, str(mock_port)], mock_port),
        process([PY, "-c", SINK, str(sink_port)], sink_port),
        contextlib.ExitStack() as stack,
    ):
        upstream = f"http://127.0.0.1:{mock_port}"
        base: dict[str, int] = {}
        if args.baseline is not None:
            port = free_port()
            (server,) = servers(upstream, port, sink_port, ["uvicorn"])
            env = {**server.env, "PYTHONPATH": str(args.baseline.resolve())}
            base["baseline"] = port
            pid = stack.enter_context(process(server.args, port, env, cwd=args.baseline))
            base_pid = {"baseline": pid}
        else:
            base_pid = {}
        for server in servers(upstream, free_port(), sink_port, which):
            port = int(server.env["OTEL_LLM_PROXY_LISTEN"].rsplit(":", 1)[1])
            with process(server.args, port, server.env) as pid:
                ports = {"direct": mock_port, "proxy": port, **base}
                result = run(measure({"proxy": pid, **base_pid}, ports, args.quick))
            results[server.name] = result
            print(report(server.name, result), "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
