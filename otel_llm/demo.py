"""``make demo``: a small chain of real calls through the official ``ollama`` client, traced.

Uses the Ollama at ``OLLAMA_HOST`` if one answers, else starts the built-in mock
on 127.0.0.1. Spans and metrics stay in memory and are printed as a tree.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llm
from otel_llm import environment_variables as env
from otel_llm import semconv as sc
from otel_llm.instruments import TOKEN_TYPE

CHAT_MODEL = os.environ.get(env.OTEL_LLM_DEMO_MODEL, "llama3.2")
EMBED_MODEL = os.environ.get(env.OTEL_LLM_DEMO_EMBED_MODEL, "all-minilm")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _ollama_url() -> str:
    raw = os.environ.get(env.OLLAMA_HOST, "127.0.0.1:11434").strip()
    return raw if "://" in raw else "http://" + raw


def _real_ollama_running(url: str) -> bool:
    try:
        # A plain GET / is not an LLM call: it makes no span.
        return "Ollama is running" in httpx.get(url, timeout=0.5).text
    except httpx.HTTPError:
        return False


def get_weather(city: str) -> str:
    return f"22°C and clear in {city}"


def run_chain() -> None:
    """request → retrieve (embed) → chat (tool call) → tool → chat, stream, async, insight."""
    import ollama

    client = ollama.Client()
    with otel_llm.workflow("weather-question"):
        with otel_llm.retrieval("city-notes"):
            client.embed(model=EMBED_MODEL, input=["Tokyo travel notes", "Osaka travel notes"])
        with otel_llm.agent("weather-agent"):
            messages: list[Any] = [{"role": "user", "content": "What's the weather in Tokyo?"}]
            first = client.chat(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])
            messages.append(first.message)
            for call in first.message.tool_calls or []:
                with otel_llm.tool(call.function.name):
                    result = get_weather(**call.function.arguments)
                messages.append(
                    {"role": "tool", "content": result, "tool_name": call.function.name}
                )
            client.chat(model=CHAT_MODEL, messages=messages)
    with otel_llm.workflow("streamed-answer"):
        for _part in client.generate(model=CHAT_MODEL, prompt="Why is the sky blue?", stream=True):
            pass

    async def async_part() -> None:
        aclient = ollama.AsyncClient()
        with otel_llm.workflow("async-answer"):
            stream = await aclient.chat(
                model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hi"}], stream=True
            )
            async for _part in stream:
                pass

    asyncio.run(async_part())
    run_insight()


LONG_PROMPT = "Summarise these notes: " + "the quick brown fox jumps over the lazy dog " * 40
"""About 360 words: more than a 256-token window holds."""


def run_insight() -> None:
    """What only Ollama tells: a pull, a prompt cut to fit the window, calls that queued."""
    import ollama

    client = ollama.Client()
    with otel_llm.workflow("ollama-insight"):
        for _progress in client.pull(CHAT_MODEL, stream=True):
            pass
        client.chat(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": LONG_PROMPT}],
            options={"num_ctx": 256},
        )

        async def three_at_once() -> None:
            aclient = ollama.AsyncClient()
            ask = [{"role": "user", "content": "Say hi"}]
            await asyncio.gather(*(aclient.chat(model=CHAT_MODEL, messages=ask) for _ in range(3)))

        asyncio.run(three_at_once())


def _line(span: ReadableSpan) -> str:
    attrs = dict(span.attributes or {})
    ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    bits = [f"{span.name}", f"{ms:7.1f} ms"]
    if sc.USAGE_INPUT_TOKENS in attrs:
        out = attrs.get(sc.USAGE_OUTPUT_TOKENS, "-")
        bits.append(f"tokens in={attrs['gen_ai.usage.input_tokens']!s} out={out!s}")
    ttfc = attrs.get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)
    if isinstance(ttfc, float):
        bits.append(f"ttfc={ttfc * 1e3:.1f} ms")
    decode = attrs.get(sc.OLLAMA_DECODE_TOKENS_PER_SECOND)
    if isinstance(decode, float):
        bits.append(f"decode={decode:.0f} tok/s")
    size = attrs.get(sc.OLLAMA_CONTEXT_SIZE)
    if isinstance(size, int):
        cut = "  TRUNCATED" if attrs.get(sc.OLLAMA_CONTEXT_TRUNCATED) else ""
        used = attrs.get(sc.OLLAMA_CONTEXT_UTILIZATION, 0.0)
        bits.append(f"context={size} ({attrs.get(sc.OLLAMA_CONTEXT_SOURCE)}) used={used:.0%}{cut}")
    wait = attrs.get(sc.OLLAMA_WAIT_DURATION)
    if isinstance(wait, float) and wait >= 0.001:
        bits.append(f"waited={wait * 1e3:.1f} ms outside Ollama")
    status = attrs.get(sc.OLLAMA_OPERATION_STATUS)
    if isinstance(status, str):
        bits.append(f"status={status}")
    total = attrs.get(sc.OLLAMA_OPERATION_TOTAL_BYTES)
    if isinstance(total, int):
        done = attrs.get(sc.OLLAMA_OPERATION_COMPLETED_BYTES, 0)
        bits.append(f"bytes={done}/{total} layers={attrs.get(sc.OLLAMA_OPERATION_LAYERS)}")
    tools = attrs.get(sc.TOOL_CALL_NAMES)
    if isinstance(tools, (list, tuple)):
        bits.append(f"tool_calls={list(tools)}")
    if sc.ERROR_TYPE in attrs:
        bits.append(f"ERROR {attrs['error.type']!s}")
    return "  ".join(bits)


def print_tree(spans: Sequence[ReadableSpan], out: Any = sys.stdout) -> None:
    """Each trace as an indented outline, children in start order."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0):
            out.write("  " * depth + ("└─ " if depth else "") + _line(span) + "\n")
            walk(span.context.span_id if span.context else None, depth + 1)

    for root in sorted(by_parent.get(None, []), key=lambda s: s.start_time or 0):
        out.write(f"\ntrace {root.context.trace_id:032x}\n" if root.context else "\n")
        out.write(_line(root) + "\n")
        walk(root.context.span_id if root.context else None, 1)


_LABELS = (
    (sc.OPERATION_NAME, "op"),
    (sc.OLLAMA_OPERATION_NAME, "op"),
    (sc.REQUEST_MODEL, "model"),
    (TOKEN_TYPE, "tokens"),
)


def print_metrics(reader: InMemoryMetricReader, out: Any = sys.stdout) -> None:
    data = reader.get_metrics_data()
    if data is None:
        out.write("\n(no metrics recorded)\n")
        return
    out.write("\nmetrics\n")
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    label = ",".join(
                        f"{short}={attrs[key]}" for key, short in _LABELS if key in attrs
                    )
                    count = getattr(point, "count", None)
                    total = getattr(point, "sum", getattr(point, "value", 0))
                    out.write(
                        f"  {metric.name:<46} {label:<55} count={count} sum={total:.4g}"
                        f" {metric.unit}\n"
                    )


def main(argv: Sequence[str] | None = None) -> int:
    url = _ollama_url()
    mock = None
    if _real_ollama_running(url):
        print(f"Using the Ollama server at {url}")
    else:
        from otel_llm.testing.mock_ollama import MockOllama, Scenario, ToolCall

        scenario = Scenario(
            reply="It is 22°C and clear in Tokyo right now.",
            tool_calls=[ToolCall("get_weather", {"city": "Tokyo"})],
            ttft=0.05,
            chunk_delay=0.005,
        )
        mock = MockOllama(default=scenario, models=(CHAT_MODEL, EMBED_MODEL)).start()
        mock.parallel = 1  # like OLLAMA_NUM_PARALLEL=1: concurrent calls queue
        os.environ[env.OLLAMA_HOST] = mock.url
        print(f"No Ollama at {url}: using the built-in mock Ollama at {mock.url}")

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel_llm.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    # chains.py uses the global provider; point it at ours for the demo.
    from opentelemetry import trace

    trace.set_tracer_provider(tracer_provider)
    try:
        run_chain()
    finally:
        otel_llm.uninstrument()
        if mock is not None:
            mock.stop()
    print_tree(exporter.get_finished_spans())
    print_metrics(reader)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
