"""One benchmark configuration in its own process (instrumentors patch globally).

``_worker.py CONFIG URL`` instruments itself as CONFIG, answers one JSON line on its
protocol pipe (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``), then runs the
commands ``bench/run.py`` sends on stdin, one JSON object a line, replying one a line:

* ``{"cmd": "batch", "kind": K, "mode": "call"|"stream", "n": N}`` runs N calls and
  returns the CPU (``time.thread_time``) and wall time of each, in seconds, the
  whole process's CPU per call over the batch and one metrics collection
  (``proc``), plus the spans exported meanwhile. A streamed call is split in three
  phases: ``open`` (the call up to its first part), ``mid`` (every part after it but
  the last) and ``end`` (the last part, the end of the iterator and the response's
  close).
* ``{"cmd": "batch", "kind": K, "mode": "paired", "n": N, "period": S}`` runs N pairs of
  unstreamed calls in this one process, one traced and one under
  ``suppress_instrumentation()`` (which every configuration honours), in alternating
  order; ``cpu`` holds each pair's difference (traced minus suppressed). Both calls
  share one heap and one cache state, so a per-byte cost shows without the layout
  differences between processes that move large-prompt cells for every config alike;
  each starts S seconds after the previous one began, after an untimed collection
  (``_CallsApart``).
* ``{"cmd": "rss", "kind": K}``: a 200-chunk warm-up stream, then one ``bench-rss``
  stream (50,000 chunks); ``ru_maxrss`` before and after, in KiB.
* ``{"cmd": "report"}``: span total, metric points collected, package versions.

Kinds: ``ollama-sync``, ``ollama-async`` (the official client's ``chat``),
``openai-sync``, ``openai-async`` (``chat.completions.create`` on ``/v1``) and
``httpx-sync``, ``httpx-async`` (``POST /api/chat``, the body read and decoded as JSON;
streamed: ``iter_lines`` + ``json.loads``), and the same raw call through the other
HTTP front-ends: ``requests-sync`` (a ``requests.Session``; streamed: ``stream=True`` +
``iter_lines``) and ``aiohttp-async`` (a ``ClientSession``; ``await resp.json()``;
streamed: ``async for line in resp.content``); ``@100k`` / ``@1m`` after a kind: a prompt
of that size instead of 1 KB. Every configuration exports through the same
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

from opentelemetry.instrumentation.utils import suppress_instrumentation
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
PROMPT_BYTES = {"": 1_000, "100k": 100_000, "1m": 1_000_000}
"""Prompt sizes: a kind's ``@100k`` / ``@1m`` suffix; 1 KB without one."""
CLIENTS = ("ollama", "openai", "httpx", "requests", "aiohttp")
SYNC_ONLY, ASYNC_ONLY = ("requests",), ("aiohttp",)
RAW = ("httpx", "requests", "aiohttp")
"""Clients that POST ``/api/chat`` themselves and decode the NDJSON/JSON body."""


def messages(size: str = "") -> list[dict[str, str]]:
    """A user prompt of about ``PROMPT_BYTES[size]`` bytes of JSON (RAG-like text)."""
    words = "Why is the sky blue? Consider Rayleigh scattering of sunlight by air. "
    text = (words * (PROMPT_BYTES[size] // len(words) + 1))[: PROMPT_BYTES[size]]
    return [{"role": "user", "content": text}]


MESSAGES = messages()


def parse_kind(kind: str) -> tuple[str, bool, str]:
    """``"httpx-sync@100k"`` -> (client, is_async, prompt size key)."""
    name, _, size = kind.partition("@")
    client, _, mode = name.partition("-")
    if (
        client not in CLIENTS
        or mode not in ("sync", "async")
        or size not in PROMPT_BYTES
        or (client in SYNC_ONLY and mode != "sync")
        or (client in ASYNC_ONLY and mode != "async")
    ):
        raise ValueError(f"unknown kind {kind!r}")
    return client, mode == "async", size


PACKAGES = (
    "otel-llm",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-requests",
    "opentelemetry-instrumentation-ollama",
    "opentelemetry-semantic-conventions-ai",
    "openinference-instrumentation-ollama",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
    "opentelemetry-instrumentation-openai",
    "openinference-instrumentation-openai",
    "ollama",
    "openai",
    "httpx",
    "httpcore",
    "h11",
    "httpx2",
    "requests",
    "urllib3",
    "aiohttp",
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
    """Generic HTTP client spans: contrib's httpx instrumentor, and its requests one if
    installed (each client's calls go through one of them)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    with contextlib.suppress(ImportError):
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


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


def _otel_llm_baseline(tp: TracerProvider, mp: MeterProvider) -> None:
    """``otel_llm`` from the directory ``run.py --baseline`` names: before vs after."""
    where = os.environ.get("BENCH_OTEL_LLM_BASELINE")
    if not where:
        raise RuntimeError("no --baseline directory given")
    sys.path.insert(0, where)
    import otel_llm

    if not otel_llm.__file__ or not otel_llm.__file__.startswith(where):
        raise RuntimeError(f"otel_llm came from {otel_llm.__file__}, not {where}")
    otel_llm.instrument(tracer_provider=tp, meter_provider=mp, http_spans=False)


def _openllmetry(tp: TracerProvider, mp: MeterProvider) -> None:
    """Its ``ollama`` instrumentor, and its ``openai`` one if installed (as Traceloop's
    SDK would instrument both); each client's calls go through one of them."""
    from opentelemetry.instrumentation.ollama import OllamaInstrumentor

    OllamaInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    with contextlib.suppress(ImportError):
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _openinference(tp: TracerProvider, mp: MeterProvider) -> None:
    from openinference.instrumentation.ollama import OllamaInstrumentor

    OllamaInstrumentor().instrument(tracer_provider=tp)
    with contextlib.suppress(ImportError):
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp)


CONFIGS: dict[str, Callable[[TracerProvider, MeterProvider], None]] = {
    "bare": _bare,
    "bare-2": _bare,  # a second bare worker: the A/A check of the method's noise floor
    "httpx-instr": _httpx,
    "otel_llm-spans": _otel_llm_spans,
    "otel_llm": _otel_llm,
    "otel_llm-lean": _otel_llm_lean,
    "otel_llm-baseline": _otel_llm_baseline,
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
        self.requests: Any = None
        self.aiohttp: Any = None
        with contextlib.suppress(ImportError):
            import requests

            self.requests = requests.Session()
        self.openai: Any = None
        self.aopenai: Any = None
        try:
            import openai
        except ImportError:
            openai = None  # type: ignore[assignment]
        if openai is not None:
            self.openai = openai.OpenAI(base_url=url + "/v1", api_key="bench")

        async def make() -> tuple[Any, Any, Any]:
            aopenai = (
                openai.AsyncOpenAI(base_url=url + "/v1", api_key="bench")
                if openai is not None
                else None
            )
            with contextlib.suppress(ImportError):
                import aiohttp

                self.aiohttp = aiohttp.ClientSession()  # needs a running loop
            return ollama.AsyncClient(host=url), httpx.AsyncClient(), aopenai

        self.aollama, self.ahttpx, self.aopenai = loop.run_until_complete(make())

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.aiohttp is not None:
            loop.run_until_complete(self.aiohttp.close())


def _body(model: str, stream: bool, msgs: list[dict[str, str]] = MESSAGES) -> dict[str, Any]:
    return {"model": model, "messages": msgs, "stream": stream}


def _done(client: str, reply: Any) -> bool:
    """The reply is complete (each client's own way of saying so)."""
    if client == "ollama":
        return bool(reply.done)
    if client == "openai":
        return reply.choices[0].finish_reason is not None
    return bool(reply["done"])


def run_calls(c: Clients, kind: str, n: int) -> tuple[list[float], list[float]]:
    """N unstreamed calls; per call CPU and wall seconds."""
    client, _, size = parse_kind(kind)
    msgs = messages(size)
    cpu: list[float] = []
    wall: list[float] = []
    tt, pc = time.thread_time, time.perf_counter
    call: Callable[[], Any]
    if client == "ollama":
        chat = c.ollama.chat
        call = lambda: chat(model=CALL_MODEL, messages=msgs)  # noqa: E731
    elif client == "openai":
        create = c.openai.chat.completions.create
        call = lambda: create(model=CALL_MODEL, messages=msgs)  # noqa: E731
    else:
        session = c.requests if client == "requests" else c.httpx
        post, url, body = session.post, c.chat_url, _body(CALL_MODEL, False, msgs)
        call = lambda: post(url, json=body).json()  # noqa: E731
    for _ in range(n):
        t0, w0 = tt(), pc()
        reply = call()
        t1, w1 = tt(), pc()
        cpu.append(t1 - t0)
        wall.append(w1 - w0)
    assert _done(client, reply)
    return cpu, wall


async def arun_calls(c: Clients, kind: str, n: int) -> tuple[list[float], list[float]]:
    """Async twin of ``run_calls`` (CPU of the loop thread, which is this one)."""
    client, _, size = parse_kind(kind)
    msgs = messages(size)
    cpu: list[float] = []
    wall: list[float] = []
    tt, pc = time.thread_time, time.perf_counter
    body = _body(CALL_MODEL, False, msgs)
    for _ in range(n):
        t0, w0 = tt(), pc()
        if client == "ollama":
            reply = await c.aollama.chat(model=CALL_MODEL, messages=msgs)
        elif client == "openai":
            reply = await c.aopenai.chat.completions.create(model=CALL_MODEL, messages=msgs)
        elif client == "aiohttp":
            async with c.aiohttp.post(c.chat_url, json=body) as response:
                reply = await response.json()
        else:
            reply = (await c.ahttpx.post(c.chat_url, json=body)).json()
        t1, w1 = tt(), pc()
        cpu.append(t1 - t0)
        wall.append(w1 - w0)
    assert _done(client, reply)
    return cpu, wall


class _CallsApart:
    """Before each paired call: a collection, then the wait until ``period`` seconds have
    passed since the previous call began (both untimed).

    The collection starts every call from the same collector state, on a heap whose older
    objects are frozen (``gc.freeze``), so it is cheap. httpx keeps each request, body and
    all, in a reference cycle, freed only by the collector, which runs when allocations
    trigger it: in whichever call of a pair allocates past the threshold. At 1 MB that
    free moved pairs by hundreds of µs, one way or the other (OpenLLMetry read -167 µs in
    one run). The wait spaces every prompt size's calls equally (``run.Plan.pair_period``
    says why)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.start = 0.0  # when the last call began (perf_counter)

    def __enter__(self) -> _CallsApart:
        gc.collect()
        gc.freeze()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        gc.unfreeze()

    def gap(self) -> float:
        """Seconds to wait before the next call; that call is taken to start then."""
        gc.collect()
        now = time.perf_counter()
        self.start = max(now, self.start + self.period)
        return self.start - now


def run_paired(c: Clients, kind: str, n: int, first: int = 0, period: float = 0.0) -> list[float]:
    """N pairs of calls, traced and suppressed, in alternating order (which goes first in
    the first pair: ``first``), after one untimed call, so that neither side always takes
    the batch's cold first call; each pair's CPU difference in seconds."""
    diffs: list[float] = []
    with _CallsApart(period) as apart:
        time.sleep(apart.gap())
        with suppress_instrumentation():
            run_calls(c, kind, 1)
        for i in range(first, first + n):
            cpu = {}
            for traced in (True, False) if i % 2 else (False, True):
                time.sleep(apart.gap())
                with contextlib.nullcontext() if traced else suppress_instrumentation():
                    cpu[traced] = run_calls(c, kind, 1)[0][0]
            diffs.append(cpu[True] - cpu[False])
    return diffs


async def arun_paired(
    c: Clients, kind: str, n: int, first: int = 0, period: float = 0.0
) -> list[float]:
    """Async twin of ``run_paired``."""
    diffs: list[float] = []
    with _CallsApart(period) as apart:
        await asyncio.sleep(apart.gap())
        with suppress_instrumentation():
            await arun_calls(c, kind, 1)
        for i in range(first, first + n):
            cpu = {}
            for traced in (True, False) if i % 2 else (False, True):
                await asyncio.sleep(apart.gap())
                with contextlib.nullcontext() if traced else suppress_instrumentation():
                    cpu[traced] = (await arun_calls(c, kind, 1))[0][0]
            diffs.append(cpu[True] - cpu[False])
    return diffs


def _stream_done(client: str, last: Any) -> bool:
    if client == "ollama":
        return bool(last.done)
    if client == "openai":
        return any(ch.finish_reason for ch in last.choices) or last.usage is not None
    return bool(last["done"])


def stream_once(c: Clients, kind: str, model: str) -> tuple[int, float, float, float, float]:
    """One streamed call: (parts, open CPU, mid CPU, end CPU, wall)."""
    client, _, _ = parse_kind(kind)
    tt, pc = time.thread_time, time.perf_counter
    t0, w0 = tt(), pc()
    with contextlib.ExitStack() as stack:
        parts: Any
        if client == "ollama":
            parts = iter(c.ollama.chat(model=model, messages=MESSAGES, stream=True))
        elif client == "openai":
            parts = stack.enter_context(
                c.openai.chat.completions.create(model=model, messages=MESSAGES, stream=True)
            )
            parts = iter(parts)
        elif client == "requests":
            response = stack.enter_context(
                c.requests.post(c.chat_url, json=_body(model, True), stream=True)
            )
            parts = map(json.loads, response.iter_lines())
        else:
            response = stack.enter_context(
                c.httpx.stream("POST", c.chat_url, json=_body(model, True))
            )
            parts = map(json.loads, response.iter_lines())
        last = next(parts)
        t1 = tt()
        count, t2, cur = 1, t1, t1
        for part in parts:  # t2: when the next-to-last part arrived
            t2, cur = cur, tt()
            last, count = part, count + 1
    t3 = tt()
    w3 = pc()
    assert _stream_done(client, last), "stream did not end with its final record"
    return count, t1 - t0, t2 - t1, t3 - t2, w3 - w0


async def astream_once(c: Clients, kind: str, model: str) -> tuple[int, float, float, float, float]:
    """Async twin of ``stream_once``."""
    client, _, _ = parse_kind(kind)
    tt, pc = time.thread_time, time.perf_counter
    t0, w0 = tt(), pc()
    async with contextlib.AsyncExitStack() as stack:
        parts: Any
        loads: Callable[[Any], Any] = lambda x: x  # noqa: E731
        if client == "ollama":
            parts = (await c.aollama.chat(model=model, messages=MESSAGES, stream=True)).__aiter__()
        elif client == "openai":
            stream = await c.aopenai.chat.completions.create(
                model=model, messages=MESSAGES, stream=True
            )
            parts = (await stack.enter_async_context(stream)).__aiter__()
        elif client == "aiohttp":
            response = await stack.enter_async_context(
                c.aiohttp.post(c.chat_url, json=_body(model, True))
            )
            parts, loads = response.content.__aiter__(), json.loads
        else:
            response = await stack.enter_async_context(
                c.ahttpx.stream("POST", c.chat_url, json=_body(model, True))
            )
            parts, loads = response.aiter_lines().__aiter__(), json.loads
        last = loads(await parts.__anext__())
        t1 = tt()
        count, t2, cur = 1, t1, t1
        async for part in parts:
            t2, cur = cur, tt()
            last, count = loads(part), count + 1
    t3 = tt()
    w3 = pc()
    assert _stream_done(client, last), "stream did not end with its final record"
    return count, t1 - t0, t2 - t1, t3 - t2, w3 - w0


# --- the command loop -----------------------------------------------------------------------


class Worker:
    def __init__(self, config: str, url: str) -> None:
        self.config = config
        self.exporter = CountingExporter()
        self.paired_batches: dict[str, int] = {}
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        CONFIGS[config](self.tracer_provider, self.meter_provider)
        self.loop = asyncio.new_event_loop()
        self.clients = Clients(url, self.loop)

    def batch(self, kind: str, mode: str, n: int, period: float = 0.0) -> dict[str, Any]:
        before = self.exporter.count
        out: dict[str, Any] = {"calls": n}
        p0 = time.process_time()
        if mode == "call":
            if parse_kind(kind)[1]:
                cpu, wall = self.loop.run_until_complete(arun_calls(self.clients, kind, n))
            else:
                cpu, wall = run_calls(self.clients, kind, n)
            out.update(cpu=cpu, wall=wall)
        elif mode == "paired":
            # Which call goes first alternates from batch to batch of the same kind.
            first = self.paired_batches[kind] = self.paired_batches.get(kind, 0) + 1
            out["cpu"] = (
                self.loop.run_until_complete(arun_paired(self.clients, kind, n, first, period))
                if parse_kind(kind)[1]
                else run_paired(self.clients, kind, n, first, period)
            )
        else:
            rows = (
                [self.loop.run_until_complete(self._astreams(kind, n))]
                if parse_kind(kind)[1]
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
        # Whole-process CPU (every thread: exporters, collectors) per call, with a
        # metrics collection as a periodic reader would make, so work deferred to
        # collection time counts wherever it runs. A second collection right after
        # measures what any collection costs (exporting every series again); that fixed
        # cost is taken out, since a 60 s export interval spreads it over far more calls
        # than one batch.
        self.reader.get_metrics_data()
        p1 = time.process_time()
        self.reader.get_metrics_data()
        fixed = time.process_time() - p1
        out["proc"] = [(p1 - p0 - fixed) / n]
        out["spans"] = self.exporter.count - before
        return out

    async def _astreams(self, kind: str, n: int) -> list[tuple[int, float, float, float, float]]:
        return [await astream_once(self.clients, kind, STREAM_MODEL) for _ in range(n)]

    def rss(self, kind: str) -> dict[str, Any]:
        """Peak RSS of this fresh process around one long stream."""
        is_async = parse_kind(kind)[1]

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
                batch = worker.batch(cmd["kind"], cmd["mode"], cmd["n"], cmd.get("period", 0.0))
                reply({"ok": True, **batch})
            elif name == "rss":
                reply({"ok": True, **worker.rss(cmd["kind"])})
            elif name == "report":
                reply({"ok": True, **worker.report()})
            elif name == "quit":
                with contextlib.suppress(Exception):
                    worker.clients.close(worker.loop)
                reply({"ok": True})
                break
            else:
                reply({"ok": False, "error": f"unknown command {name!r}"})
        except Exception as exc:
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
