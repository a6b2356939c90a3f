"""What a missing or failing collector costs the app: call latency and memory, in one run.

    .venv/bin/python bench/exporter_down.py [--rounds 9] [--calls 200] [--spans 20000]

The app makes unstreamed Ollama calls (``bench/_server.py``: its own process, real HTTP
on 127.0.0.1) through one keep-alive ``httpx.Client``, traced by otel_llm into a
batch span processor with an OTLP/HTTP exporter that points at a collector that is
healthy (answers 200), refused (a closed port), hanging (accepts, never answers) or
unavailable (answers 503). The collectors run in a second process. Each exporter is
otel_llm's (``_exporters.FailFastSpanExporter`` in a ``FlushBoundedSpanProcessor``,
what ``instrument()`` builds) or, for comparison, the SDK's own, unwrapped.

Latency: wall time per call, configurations interleaved round by round (the order
rotates), median batch reported with its ratio to the healthy collector. The batch
processor exports every 100 ms (``--delay``) so the exporter is busy while calls run.

Memory: each configuration in its own process makes ``--spans`` traced calls, then
reports the growth of its resident set and how many spans it still holds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_llm
from otel_llm import _exporters

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
ENDPOINTS = ("healthy", "refused", "hanging", "unavailable")
KINDS = ("otel_llm", "sdk")


# -- the collectors (second process) ---------------------------------------------------------
def _serve_collectors() -> None:
    """Print {"healthy": port, ...} on one line, then serve until killed."""

    def answering(status: int) -> int:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return int(server.server_address[1])

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(1024)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            held.append(hang.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = int(closed.getsockname()[1])
    ports = {
        "healthy": answering(200),
        "refused": refused,
        "hanging": int(hang.getsockname()[1]),
        "unavailable": answering(503),
    }
    print(json.dumps(ports), flush=True)
    threading.Event().wait()


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


# -- the app ---------------------------------------------------------------------------------
def _provider(kind: str, port: int, delay_ms: float) -> TracerProvider:
    inner = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    provider = TracerProvider()
    if kind == "otel_llm":
        provider.add_span_processor(
            _exporters.FlushBoundedSpanProcessor(
                _exporters.FailFastSpanExporter(inner), schedule_delay_millis=delay_ms
            )
        )
    else:
        provider.add_span_processor(BatchSpanProcessor(inner, schedule_delay_millis=delay_ms))
    return provider


def _batch(client: httpx.Client, n: int) -> float:
    """Wall µs per call of ``n`` unstreamed calls."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        body = {"model": "bench-call", "messages": MESSAGES, "stream": False}
        client.post("/api/chat", json=body).json()
    return (time.perf_counter() - start) / n * 1e6


def _latency(
    url: str, ports: dict[str, int], rounds: int, calls: int, delay_ms: float
) -> dict[str, float]:
    providers = {
        f"{kind} {name}": _provider(kind, ports[name], delay_ms)
        for kind in KINDS
        for name in ENDPOINTS
    }
    names = list(providers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    with httpx.Client(base_url=url, timeout=30) as client:
        for name in names:  # warm-up: connections, imports, each endpoint's first failure
            otel_llm.instrument(tracer_provider=providers[name], metrics=False)
            _batch(client, 20)
            otel_llm.uninstrument()
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                otel_llm.instrument(tracer_provider=providers[name], metrics=False)
                samples[name].append(_batch(client, calls))
                otel_llm.uninstrument()
    done = threading.Thread(target=lambda: [p.shutdown() for p in providers.values()], daemon=True)
    done.start()
    done.join(60)  # the SDK's hanging exporter may take longer; it is a daemon thread
    return {name: statistics.median(values) for name, values in samples.items()}


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def _memory_child(url: str, kind: str, port: int, spans: int) -> None:
    """In its own process: RSS growth over ``spans`` traced calls, and spans still held."""
    provider = _provider(kind, port, 5000)  # the SDK's default schedule
    otel_llm.instrument(tracer_provider=provider, metrics=False)
    with httpx.Client(base_url=url, timeout=30) as client:
        _batch(client, 200)  # warm-up
        gc.collect()
        before = _rss_kb()
        _batch(client, spans)
        gc.collect()
        grown = _rss_kb() - before
    processor = provider._active_span_processor._span_processors[0]
    held = len(processor._batch_processor._queue)  # type: ignore[attr-defined]
    print(json.dumps({"rss_kb": grown, "queued": held}), flush=True)
    # Skip the exit flush: the SDK's exporter would retry for up to 30 s here (the exit
    # itself is measured by tests/test_exporter_down.py's scripts, not by this run).
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200, help="calls per batch")
    parser.add_argument("--delay", type=float, default=100, help="batch schedule delay, ms")
    parser.add_argument("--spans", type=int, default=20_000, help="calls in the memory run")
    parser.add_argument("--serve-collectors", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_collectors:
        _serve_collectors()
        return 0
    if args.memory_child:
        url, kind, port, spans = args.memory_child
        _memory_child(url, kind, int(port), int(spans))
        return 0
    here = str(Path(__file__))
    server, url = _start([str(Path(__file__).with_name("_server.py"))])
    collectors, line = _start([here, "--serve-collectors"])
    ports: dict[str, int] = json.loads(line)
    try:
        latency = _latency(url, ports, args.rounds, args.calls, args.delay)
        memory: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            for name in ENDPOINTS:
                child = [here, "--memory-child", url, kind, str(ports[name]), str(args.spans)]
                out = subprocess.run(
                    [sys.executable, *child], capture_output=True, text=True, timeout=600
                )
                memory[f"{kind} {name}"] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for proc in (server, collectors):
            proc.terminate()
            proc.wait(10)
    print(
        f"Wall time per unstreamed call (median of {args.rounds} interleaved batches of"
        f" {args.calls}; exports every {args.delay:g} ms), and memory over {args.spans}"
        " calls (own process, default schedule):\n"
    )
    print(f"{'exporter, collector':<24}{'µs/call':>10}{'vs healthy':>12}{'RSS +KB':>10}{'held':>7}")
    for kind in KINDS:
        for name in ENDPOINTS:
            key = f"{kind} {name}"
            ratio = latency[key] / latency[f"{kind} healthy"]
            mem = memory[key]
            print(
                f"{key:<24}{latency[key]:>10.1f}{ratio:>12.3f}{mem['rss_kb']:>10}{mem['queued']:>7}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
