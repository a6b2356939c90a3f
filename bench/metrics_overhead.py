"""What metrics add to a call's CPU: bare httpx vs spans only vs spans + metrics, in one run.

    .venv/bin/python bench/metrics_overhead.py [--rounds 9] [--calls 200] [--chunks 20]

Every configuration calls the same mock Ollama (``bench/_server.py``: its own process,
real HTTP on 127.0.0.1) through one keep-alive ``httpx.Client``. CPU is the calling
thread's (``time.thread_time``).
Configurations are interleaved round by round (instrumentation is switched between
batches) and the median batch is reported, so drift hits every configuration alike.
A second table times the metrics sink alone on recorded calls: the hand-off per call
(the calling thread) and the fold into the SDK at collection time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_llm
from otel_llm import metrics
from otel_llm._config import Settings
from otel_llm._types import LLMCall

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


class _Drop(SpanExporter):
    """Ends the span's journey right after the processor: export cost stays out of the numbers."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _tracer_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    return provider


def _configs(tp: TracerProvider) -> dict[str, Callable[[], None]]:
    one_reader = MeterProvider(metric_readers=[InMemoryMetricReader()])
    two_readers = MeterProvider(metric_readers=[InMemoryMetricReader(), InMemoryMetricReader()])
    return {
        "bare httpx": lambda: None,
        "spans": lambda: otel_llm.instrument(tracer_provider=tp, metrics=False),
        "spans+metrics": lambda: otel_llm.instrument(tracer_provider=tp, meter_provider=one_reader),
        "spans+metrics, 2 readers": lambda: otel_llm.instrument(
            tracer_provider=tp, meter_provider=two_readers
        ),
    }


def _call(client: httpx.Client, model: str) -> None:
    client.post("/api/chat", json={"model": model, "messages": MESSAGES, "stream": False}).json()


def _stream(client: httpx.Client, model: str) -> None:
    body = {"model": model, "messages": MESSAGES, "stream": True}
    with client.stream("POST", "/api/chat", json=body) as response:
        for _ in response.iter_lines():
            pass


def _batch(
    fn: Callable[[httpx.Client, str], None], client: httpx.Client, model: str, n: int
) -> float:
    """CPU µs per call of ``n`` calls in this thread."""
    gc.collect()
    start = time.thread_time()
    for _ in range(n):
        fn(client, model)
    return (time.thread_time() - start) / n * 1e6


def _end_to_end(url: str, rounds: int, calls: int) -> dict[tuple[str, str], float]:
    tp = _tracer_provider()
    configs = _configs(tp)
    workloads = {"call": (_call, "bench-call"), "stream": (_stream, "bench-stream")}
    samples: dict[tuple[str, str], list[float]] = {(w, c): [] for w in workloads for c in configs}
    names = list(configs)
    with httpx.Client(base_url=url, timeout=30) as client:
        for fn, model in workloads.values():  # warm-up: connections, imports, caches
            for setup in configs.values():
                setup()
                _batch(fn, client, model, 20)
                otel_llm.uninstrument()
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for workload, (fn, model) in workloads.items():
                for name in order:
                    configs[name]()
                    samples[(workload, name)].append(_batch(fn, client, model, calls))
                    otel_llm.uninstrument()
    return {key: statistics.median(values) for key, values in samples.items()}


def _recorded_calls(url: str) -> dict[str, LLMCall]:
    """One finished call of each kind, captured from a real instrumented call."""
    captured: list[LLMCall] = []
    otel_llm.instrument(tracer_provider=_tracer_provider(), metrics=False, sinks=[captured.append])
    try:
        with httpx.Client(base_url=url) as client:
            _call(client, "bench-call")
            _stream(client, "bench-stream")
    finally:
        otel_llm.uninstrument()
    return {"call": captured[0], "stream": captured[1]}


def _sink_alone(url: str, rounds: int, n: int) -> dict[tuple[str, str], float]:
    """CPU µs per call of the metrics sink: the hand-off (``recorder(call)``, the
    calling thread's share) and the fold (``flush``, at collection), for each set."""
    calls = _recorded_calls(url)
    out: dict[tuple[str, str], float] = {}
    for latest in (False, True):
        provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        meter = provider.get_meter("bench")
        recorder = metrics.recorder(meter, latest, metrics.ModelCap(), Settings(), limit=n + 1)
        label = "latest" if latest else "classic"
        for kind, call in calls.items():
            handoff, fold = [], []
            for _ in range(rounds):
                gc.collect()
                start = time.thread_time()
                for _ in range(n):
                    recorder(call)
                mid = time.thread_time()
                recorder.flush()
                handoff.append((mid - start) / n * 1e6)
                fold.append((time.thread_time() - mid) / n * 1e6)
            out[(kind, f"{label} hand-off")] = statistics.median(handoff)
            out[(kind, f"{label} fold")] = statistics.median(fold)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200, help="calls per batch")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("_server.py")),
            *("--chunks", str(args.chunks), "--chunk-delay", "0"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        e2e = _end_to_end(url, args.rounds, args.calls)
        alone = _sink_alone(url, args.rounds, 2000)
    finally:
        server.terminate()
        server.wait(10)
    print(f"Per-call CPU of the calling thread (median of {args.rounds} interleaved batches of")
    print(
        f"{args.calls} calls; stream = {args.chunks} content chunks), µs and ratio to bare httpx:\n"
    )
    print(f"{'configuration':<26}{'call µs':>10}{'ratio':>8}{'stream µs':>12}{'ratio':>8}")
    configs = sorted({c for _, c in e2e}, key=list(_configs(_tracer_provider())).index)
    for name in configs:
        call, stream = e2e[("call", name)], e2e[("stream", name)]
        bare_call, bare_stream = e2e[("call", "bare httpx")], e2e[("stream", "bare httpx")]
        print(
            f"{name:<26}{call:>10.1f}{call / bare_call:>8.2f}"
            f"{stream:>12.1f}{stream / bare_stream:>8.2f}"
        )
    for workload in ("call", "stream"):
        spans = e2e[(workload, "spans")]
        with_metrics = e2e[(workload, "spans+metrics")]
        print(
            f"\nmetrics on top of spans, {workload}: {with_metrics - spans:+.1f} µs per call"
            f" ({with_metrics / spans:.2f}x spans only)",
            end="",
        )
    print("\n\nThe metrics sink alone (one reader), µs per call: the hand-off in the calling")
    print("thread, then the fold into the SDK at collection time (any thread):")
    heads = ("classic hand-off", "classic fold", "latest hand-off", "latest fold")
    print(f"{'call kind':<12}" + "".join(f"{h:>18}" for h in heads))
    for kind in ("call", "stream"):
        print(f"{kind:<12}" + "".join(f"{alone[(kind, h)]:>18.1f}" for h in heads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
