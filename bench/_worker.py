"""One benchmark configuration in its own process (instrumentors patch globally).

``_worker.py CONFIG URL`` instruments itself as CONFIG, answers one JSON line on its
protocol pipe (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``), then runs the
commands ``bench/run.py`` sends on stdin, one JSON object a line, replying one a line:

* ``{"cmd": "batch", "kind": K, "mode": "call"|"stream", "n": N}`` runs N calls and
  returns the CPU (``time.thread_time``) and wall time of each, in seconds, plus the
  spans exported meanwhile. A streamed call is split in three phases: ``open`` (the
  call up to its first part), ``mid`` (every part after it but the last) and ``end``
  (the last part, the end of the iterator and the response's close).
* ``{"cmd": "rss", "kind": K}``: a 200-chunk warm-up stream, then one ``bench-rss``
  stream (50,000 chunks); ``ru_maxrss`` before and after, in KiB.
* ``{"cmd": "report"}``: span total, metric points collected, package versions.

Kinds: ``ollama-sync``, ``ollama-async`` (the official client's ``chat``) and
``httpx-sync``, ``httpx-async`` (``POST /api/chat``, the body read and decoded as JSON;
streamed: ``iter_lines`` + ``json.loads``). Every configuration exports through the same
SDK ``TracerProvider`` + ``SimpleSpanProcessor`` + a counting exporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

CALL_MODEL = "bench-call"
STREAM_MODEL = "bench-stream"
RSS_MODEL = "bench-rss"
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
KINDS = ("ollama-sync", "ollama-async", "httpx-sync", "httpx-async")

PACKAGES = (
    "otel-llm",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-ollama",
    "opentelemetry-semantic-conventions-ai",
    "openinference-instrumentation-ollama",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
    "ollama",
    "httpx",
    "httpcore",
    "h11",
    "httpx2",
    "pydantic",
    "pydantic-core",
    "wrapt",
    "uvicorn",
    "anyio",
    "py-spy",
)


class CountingExporter(SpanExporter):
    """Counts what it is given; exporting costs the same tiny amount in every config."""

    def __init__(self) -> None:
        self.count = 0
        self.names: dict[str, int] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        names = self.names
        for span in spans:
            names[span.name] = names.get(span.name, 0) + 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


# --- configurations -----------------------------------------------------------------------


def _bare(tp: TracerProvider, mp: MeterProvider) -> None:
    pass


def _httpx(tp: TracerProvider, mp: MeterProvider) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _otel_llm_spans(tp: TracerProvider, mp: MeterProvider) -> None:
    import otel_llm

    otel_llm.instrument(tracer_provider=tp, meter_provider=mp, http_spans=False, metrics=False)


def _otel_llm(tp: TracerProvider, mp: MeterProvider) -> None:
    import otel_llm

    otel_llm.instrument(tracer_provider=tp, meter_provider=mp, http_spans=False)


def _otel_llm_lean(tp: TracerProvider, mp: MeterProvider) -> None:
    import otel_llm

    otel_llm.instrument(
        tracer_provider=tp, meter_provider=mp, http_spans=False, server_metrics=False
    )


def _openllmetry(tp: TracerProvider, mp: MeterProvider) -> None:
    from opentelemetry.instrumentation.ollama import OllamaInstrumentor

    OllamaInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _openinference(tp: TracerProvider, mp: MeterProvider) -> None:
    from openinference.instrumentation.ollama import OllamaInstrumentor

    OllamaInstrumentor().instrument(tracer_provider=tp)


CONFIGS: dict[str, Callable[[TracerProvider, MeterProvider], None]] = {
    "bare": _bare,
    "bare-2": _bare,  # a second bare worker: the A/A check of the method's noise floor
    "httpx-instr": _httpx,
    "otel_llm-spans": _otel_llm_spans,
    "otel_llm": _otel_llm,
    "otel_llm-lean": _otel_llm_lean,
    "openllmetry": _openllmetry,
    "openinference": _openinference,
}


# --- the calls ------------------------------------------------------------------------------


class Clients:
    """One client of each kind, built once and reused (connection pooling, as in an app)."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        import httpx
        import ollama

        self.url = url
        self.chat_url = url + "/api/chat"
        self.ollama = ollama.Client(host=url)
        self.httpx = httpx.Client()

        async def make() -> tuple[Any, Any]:
            return ollama.AsyncClient(host=url), httpx.AsyncClient()

        self.aollama, self.ahttpx = loop.run_until_complete(make())


def _body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": stream}


def run_calls(c: Clients, kind: str, n: int) -> tuple[list[float], list[float]]:
    """N unstreamed calls; per call CPU and wall seconds."""
    cpu: list[float] = []
    wall: list[float] = []
    tt, pc = time.thread_time, time.perf_counter
    if kind == "ollama-sync":
        client = c.ollama
        for _ in range(n):
            t0, w0 = tt(), pc()
            reply = client.chat(model=CALL_MODEL, messages=MESSAGES)
            t1, w1 = tt(), pc()
            cpu.append(t1 - t0)
            wall.append(w1 - w0)
        assert reply.done
    elif kind == "httpx-sync":
        hclient, url, body = c.httpx, c.chat_url, _body(CALL_MODEL, False)
        for _ in range(n):
            t0, w0 = tt(), pc()
            data = hclient.post(url, json=body).json()
            t1, w1 = tt(), pc()
            cpu.append(t1 - t0)
            wall.append(w1 - w0)
        assert data["done"]
    else:
        raise ValueError(kind)
    return cpu, wall


async def arun_calls(c: Clients, kind: str, n: int) -> tuple[list[float], list[float]]:
    """Async twin of ``run_calls`` (CPU of the loop thread, which is this one)."""
    cpu: list[float] = []
    wall: list[float] = []
    tt, pc = time.thread_time, time.perf_counter
    if kind == "ollama-async":
        client = c.aollama
        for _ in range(n):
            t0, w0 = tt(), pc()
            reply = await client.chat(model=CALL_MODEL, messages=MESSAGES)
            t1, w1 = tt(), pc()
            cpu.append(t1 - t0)
            wall.append(w1 - w0)
        assert reply.done
    elif kind == "httpx-async":
        hclient, url, body = c.ahttpx, c.chat_url, _body(CALL_MODEL, False)
        for _ in range(n):
            t0, w0 = tt(), pc()
            data = (await hclient.post(url, json=body)).json()
            t1, w1 = tt(), pc()
            cpu.append(t1 - t0)
            wall.append(w1 - w0)
        assert data["done"]
    else:
        raise ValueError(kind)
    return cpu, wall


def stream_once(c: Clients, kind: str, model: str) -> tuple[int, float, float, float, float]:
    """One streamed call: (parts, open CPU, mid CPU, end CPU, wall)."""
    tt, pc = time.thread_time, time.perf_counter
    t0, w0 = tt(), pc()
    if kind == "ollama-sync":
        parts = iter(c.ollama.chat(model=model, messages=MESSAGES, stream=True))
        last = next(parts)
        t1 = tt()
        count, t2, cur = 1, t1, t1
        for part in parts:  # t2: when the next-to-last part arrived
            t2, cur = cur, tt()
            last, count = part, count + 1
        t3 = tt()
        done = last.done
    elif kind == "httpx-sync":
        loads = json.loads
        with c.httpx.stream("POST", c.chat_url, json=_body(model, True)) as response:
            lines = response.iter_lines()
            record = loads(next(lines))
            t1 = tt()
            count, t2, cur = 1, t1, t1
            for line in lines:
                t2, cur = cur, tt()
                record, count = loads(line), count + 1
        t3 = tt()
        done = record["done"]
    else:
        raise ValueError(kind)
    w3 = pc()
    assert done, "stream did not end with its final record"
    return count, t1 - t0, t2 - t1, t3 - t2, w3 - w0


async def astream_once(c: Clients, kind: str, model: str) -> tuple[int, float, float, float, float]:
    """Async twin of ``stream_once``."""
    tt, pc = time.thread_time, time.perf_counter
    t0, w0 = tt(), pc()
    if kind == "ollama-async":
        parts = (await c.aollama.chat(model=model, messages=MESSAGES, stream=True)).__aiter__()
        last = await parts.__anext__()
        t1 = tt()
        count, t2, cur = 1, t1, t1
        async for part in parts:
            t2, cur = cur, tt()
            last, count = part, count + 1
        t3 = tt()
        done = last.done
    elif kind == "httpx-async":
        loads = json.loads
        async with c.ahttpx.stream("POST", c.chat_url, json=_body(model, True)) as response:
            lines = response.aiter_lines().__aiter__()
            record = loads(await lines.__anext__())
            t1 = tt()
            count, t2, cur = 1, t1, t1
            async for line in lines:
                t2, cur = cur, tt()
                record, count = loads(line), count + 1
        t3 = tt()
        done = record["done"]
    else:
        raise ValueError(kind)
    w3 = pc()
    assert done, "stream did not end with its final record"
    return count, t1 - t0, t2 - t1, t3 - t2, w3 - w0


# --- the command loop -----------------------------------------------------------------------


class Worker:
    def __init__(self, config: str, url: str) -> None:
        self.config = config
        self.exporter = CountingExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        CONFIGS[config](self.tracer_provider, self.meter_provider)
        self.loop = asyncio.new_event_loop()
        self.clients = Clients(url, self.loop)

    def batch(self, kind: str, mode: str, n: int) -> dict[str, Any]:
        before = self.exporter.count
        out: dict[str, Any] = {"calls": n}
        p0 = time.process_time()
        if mode == "call":
            if kind.endswith("-async"):
                cpu, wall = self.loop.run_until_complete(arun_calls(self.clients, kind, n))
            else:
                cpu, wall = run_calls(self.clients, kind, n)
            out.update(cpu=cpu, wall=wall)
        else:
            rows = (
                [self.loop.run_until_complete(self._astreams(kind, n))]
                if kind.endswith("-async")
                else [[stream_once(self.clients, kind, STREAM_MODEL) for _ in range(n)]]
            )[0]
            out.update(
                parts=[r[0] for r in rows],
                open=[r[1] for r in rows],
                mid=[r[2] for r in rows],
                end=[r[3] for r in rows],
                cpu=[r[1] + r[2] + r[3] for r in rows],
                wall=[r[4] for r in rows],
            )
        # Whole-process CPU (every thread: exporters, collectors) per call, a metrics
        # collection included, as a periodic reader would make: work deferred to
        # collection time counts, wherever it runs.
        self.reader.get_metrics_data()
        out["proc"] = [(time.process_time() - p0) / n]
        out["spans"] = self.exporter.count - before
        return out

    async def _astreams(self, kind: str, n: int) -> list[tuple[int, float, float, float, float]]:
        return [await astream_once(self.clients, kind, STREAM_MODEL) for _ in range(n)]

    def rss(self, kind: str) -> dict[str, Any]:
        """Peak RSS of this fresh process around one long stream."""
        is_async = kind.endswith("-async")

        def one(model: str) -> int:
            if is_async:
                return self.loop.run_until_complete(astream_once(self.clients, kind, model))[0]
            return stream_once(self.clients, kind, model)[0]

        spans0 = self.exporter.count
        one(STREAM_MODEL)  # warm-up: lazy imports, connection, first-call caches
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        current = _current_rss_kb()
        t0 = time.perf_counter()
        parts = one(RSS_MODEL)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "before_kb": before,
            "current_before_kb": current,
            "after_kb": after,
            "parts": parts,
            "seconds": seconds,
            "spans": self.exporter.count - spans0,
        }

    def report(self) -> dict[str, Any]:
        points = 0
        metric_names: list[str] = []
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    metric_names.append(metric.name)
                    points += len(metric.data.data_points)
        return {
            "spans": self.exporter.count,
            "span_names": self.exporter.names,
            "metric_points": points,
            "metric_names": sorted(set(metric_names)),
            "versions": versions(),
            "python": sys.version.split()[0],
        }


def versions() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _current_rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main(argv: Sequence[str]) -> int:
    config, url = argv[1], argv[2]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")

    try:
        worker = Worker(config, url)
    except Exception as exc:
        reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 0
    reply({"ok": True, "pid": os.getpid()})
    for line in sys.stdin:
        cmd = json.loads(line)
        name = cmd["cmd"]
        try:
            if name == "batch":
                reply({"ok": True, **worker.batch(cmd["kind"], cmd["mode"], cmd["n"])})
            elif name == "rss":
                reply({"ok": True, **worker.rss(cmd["kind"])})
            elif name == "report":
                reply({"ok": True, **worker.report()})
            elif name == "quit":
                reply({"ok": True})
                break
            else:
                reply({"ok": False, "error": f"unknown command {name!r}"})
        except Exception as exc:
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
