"""Every metric otel_llm emits: name, unit, description and buckets, built once per meter.

Names follow the GenAI semantic conventions (``reference/genai-semconv.md``): the
classic set (§5) by default, the newer ``gen_ai.client.inference.*`` set (§6) with
``latest_metrics=True``. ``gen_ai.server.*`` are derived from the timings Ollama
reports in its final chunk; model residency gauges (``ollama.*``) are in
``residency.py`` but named here. Bucket boundaries are sized for local models:
durations reach minutes (cold loads), time to first token starts at 1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry.metrics import Counter, Histogram, Meter

__all__ = [
    "ALL",
    "DURATION_BUCKETS",
    "TOKEN_BUCKETS",
    "TOKEN_MODALITY",
    "TOKEN_TYPE",
    "TPOT_BUCKETS",
    "TTFT_BUCKETS",
    "ClassicInstruments",
    "Insight",
    "Instruments",
    "LatestInstruments",
    "Metric",
    "ServerInstruments",
    "build",
    "build_classic",
    "build_insight",
    "build_latest",
]

# -- bucket boundaries (seconds / tokens) -----------------------------------------------
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
    10.24, 20.48, 40.96, 81.92, 163.84, 327.68,
)  # fmt: skip
"""Semconv's DUR, extended by two doublings: a cold load of a big model takes minutes."""

TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0,
)  # fmt: skip
"""Semconv's server TTFT buckets (from 1 ms), extended to minutes for cold loads."""

TPOT_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip
"""Semconv's TPOT buckets plus four below 10 ms: a local GPU decodes a token in 5-20 ms."""

TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
    1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""Semconv's TOKEN buckets."""

TOKEN_TYPE: Final = "gen_ai.token.type"
"""Metric-only attribute of ``gen_ai.client.token.usage``: ``input`` or ``output``."""
TOKEN_MODALITY: Final = "gen_ai.token.modality"
"""Metric-only attribute of the latest usage counters; ``unknown``: servers give no breakdown."""

HISTOGRAM: Final = "histogram"
COUNTER: Final = "counter"
GAUGE: Final = "gauge"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric as exported: what a dashboard or a test can rely on."""

    name: str
    unit: str
    kind: str
    description: str
    buckets: tuple[float, ...] | None = None


# -- classic set (semconv §5; default) ----------------------------------------------------
OPERATION_DURATION = Metric(
    "gen_ai.client.operation.duration",
    "s",
    HISTOGRAM,
    "GenAI operation duration: request start to last byte.",
    DURATION_BUCKETS,
)
TOKEN_USAGE = Metric(
    "gen_ai.client.token.usage",
    "{token}",
    HISTOGRAM,
    "Number of input and output tokens used, as the server reported them.",
    TOKEN_BUCKETS,
)
TIME_TO_FIRST_CHUNK = Metric(
    "gen_ai.client.operation.time_to_first_chunk",
    "s",
    HISTOGRAM,
    "Time from request start to the first response chunk (streams).",
    TTFT_BUCKETS,
)
TIME_PER_OUTPUT_CHUNK = Metric(
    "gen_ai.client.operation.time_per_output_chunk",
    "s",
    HISTOGRAM,
    "Mean time between response chunks after the first, one value per stream.",
    TPOT_BUCKETS,
)

# -- latest genai set (semconv §6; ``latest_metrics=True``) -------------------------------
INFERENCE_DURATION = Metric(
    "gen_ai.client.inference.duration",
    "s",
    HISTOGRAM,
    "GenAI inference duration: request start to last byte.",
    DURATION_BUCKETS,
)
INFERENCE_TIME_TO_FIRST_CHUNK = Metric(
    "gen_ai.client.inference.time_to_first_chunk",
    "s",
    HISTOGRAM,
    "Time from request start to the first response chunk (streams).",
    TTFT_BUCKETS,
)
INFERENCE_TIME_PER_OUTPUT_CHUNK = Metric(
    "gen_ai.client.inference.time_per_output_chunk",
    "s",
    HISTOGRAM,
    "Mean time between response chunks after the first, one value per stream.",
    TPOT_BUCKETS,
)
INFERENCE_USAGE_INPUT = Metric(
    "gen_ai.client.inference.usage.input_tokens",
    "{token}",
    COUNTER,
    "Input tokens the server reported (cached ones included).",
)
INFERENCE_USAGE_OUTPUT = Metric(
    "gen_ai.client.inference.usage.output_tokens",
    "{token}",
    COUNTER,
    "Output tokens the server reported.",
)
INFERENCE_USAGE_CACHE_READ = Metric(
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "{token}",
    COUNTER,
    "Input tokens served from the server's prompt cache.",
)
INFERENCE_OPERATION_INPUT = Metric(
    "gen_ai.client.inference.operation.input_tokens",
    "{token}",
    HISTOGRAM,
    "Input tokens per successful inference.",
    TOKEN_BUCKETS,
)
INFERENCE_OPERATION_OUTPUT = Metric(
    "gen_ai.client.inference.operation.output_tokens",
    "{token}",
    HISTOGRAM,
    "Output tokens per successful inference.",
    TOKEN_BUCKETS,
)
EMBEDDINGS_DURATION = Metric(
    "gen_ai.client.embeddings.duration",
    "s",
    HISTOGRAM,
    "GenAI embeddings duration: request start to last byte.",
    DURATION_BUCKETS,
)
EMBEDDINGS_INPUT = Metric(
    "gen_ai.client.embeddings.operation.input_tokens",
    "{token}",
    HISTOGRAM,
    "Input tokens per successful embeddings call.",
    TOKEN_BUCKETS,
)

# -- server-side, from Ollama's own timings (both sets) -----------------------------------
SERVER_REQUEST_DURATION = Metric(
    "gen_ai.server.request.duration",
    "s",
    HISTOGRAM,
    "Server-side request duration: Ollama's total_duration.",
    DURATION_BUCKETS,
)
SERVER_TIME_TO_FIRST_TOKEN = Metric(
    "gen_ai.server.time_to_first_token",
    "s",
    HISTOGRAM,
    "Server-side time to first token: Ollama's load_duration + prompt_eval_duration.",
    TTFT_BUCKETS,
)
SERVER_TIME_PER_OUTPUT_TOKEN = Metric(
    "gen_ai.server.time_per_output_token",
    "s",
    HISTOGRAM,
    "Server-side decode time per output token: Ollama's eval_duration / eval_count.",
    TPOT_BUCKETS,
)
MODEL_LOAD_DURATION = Metric(
    "ollama.model.load.duration",
    "s",
    HISTOGRAM,
    "Time Ollama spent loading the model (load_duration), for calls that loaded it.",
    DURATION_BUCKETS,
)

# -- model residency (observable gauges fed by /api/ps; residency.py) ---------------------
MODELS_LOADED = Metric("ollama.models.loaded", "{model}", GAUGE, "Models Ollama holds in memory.")
MODEL_SIZE = Metric(
    "ollama.model.size", "By", GAUGE, "Memory a loaded model occupies (RAM and VRAM)."
)
MODEL_VRAM_SIZE = Metric(
    "ollama.model.vram.size", "By", GAUGE, "Part of a loaded model held in GPU memory."
)
MODEL_TIME_TO_UNLOAD = Metric(
    "ollama.model.time_to_unload",
    "s",
    GAUGE,
    "Seconds until Ollama unloads an idle model (its keep_alive expiry).",
)

# -- Ollama insight: context window, time outside Ollama, model operations ---------------
UTILIZATION_BUCKETS: Final = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
"""Share of the context window a prompt used; 1.0 and above is a cut prompt."""

CONTEXT_TRUNCATIONS = Metric(
    "ollama.context.truncations",
    "{call}",
    COUNTER,
    "Calls whose prompt filled the context window: Ollama cut it (docs/attributes.md).",
)
CONTEXT_UTILIZATION = Metric(
    "ollama.context.utilization",
    "1",
    HISTOGRAM,
    "Prompt tokens over the context window, per call with a known window.",
    UTILIZATION_BUCKETS,
)
WAIT_DURATION = Metric(
    "ollama.request.wait.duration",
    "s",
    HISTOGRAM,
    "Client duration minus Ollama's total_duration: queued, loading elsewhere, on the wire.",
    TTFT_BUCKETS,
)
MODEL_OPERATION_DURATION = Metric(
    "ollama.model.operation.duration",
    "s",
    HISTOGRAM,
    "Duration of a model operation (pull, push, create, copy, delete, show).",
    DURATION_BUCKETS,
)
MODEL_PULLED = Metric(
    "ollama.model.pulled",
    "By",
    COUNTER,
    "Bytes a pull downloaded (completed bytes of its layers).",
)
INSIGHT: Final = (
    CONTEXT_TRUNCATIONS,
    CONTEXT_UTILIZATION,
    WAIT_DURATION,
    MODEL_OPERATION_DURATION,
    MODEL_PULLED,
)

# -- otel_llm's own exporters (observable counters; _exporters.py) -----------------------
EXPORTER_SPANS_DROPPED = Metric(
    "otel_llm.exporter.span.dropped",
    "{span}",
    COUNTER,
    "Spans otel_llm's exporters gave up on (collector down, failing or not answering).",
)
EXPORTER_POINTS_DROPPED = Metric(
    "otel_llm.exporter.metric_data_point.dropped",
    "{data_point}",
    COUNTER,
    "Metric data points otel_llm's exporters gave up on (collector down, failing or silent).",
)

CLASSIC: Final = (OPERATION_DURATION, TOKEN_USAGE, TIME_TO_FIRST_CHUNK, TIME_PER_OUTPUT_CHUNK)
LATEST: Final = (
    INFERENCE_DURATION,
    INFERENCE_TIME_TO_FIRST_CHUNK,
    INFERENCE_TIME_PER_OUTPUT_CHUNK,
    INFERENCE_USAGE_INPUT,
    INFERENCE_USAGE_OUTPUT,
    INFERENCE_USAGE_CACHE_READ,
    INFERENCE_OPERATION_INPUT,
    INFERENCE_OPERATION_OUTPUT,
    EMBEDDINGS_DURATION,
    EMBEDDINGS_INPUT,
)
SERVER: Final = (
    SERVER_REQUEST_DURATION,
    SERVER_TIME_TO_FIRST_TOKEN,
    SERVER_TIME_PER_OUTPUT_TOKEN,
    MODEL_LOAD_DURATION,
)
RESIDENCY: Final = (MODELS_LOADED, MODEL_SIZE, MODEL_VRAM_SIZE, MODEL_TIME_TO_UNLOAD)
EXPORTER: Final = (EXPORTER_SPANS_DROPPED, EXPORTER_POINTS_DROPPED)
ALL: Final = CLASSIC + LATEST + SERVER + RESIDENCY + INSIGHT + EXPORTER


def histogram(meter: Meter, spec: Metric) -> Histogram:
    """The histogram for ``spec`` with its bucket advice (the SDK gives none for GenAI)."""
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=list(spec.buckets) if spec.buckets else None,
    )


def counter(meter: Meter, spec: Metric) -> Counter:
    return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


@dataclass(frozen=True, slots=True)
class ServerInstruments:
    """``gen_ai.server.*`` and the cold-load histogram: the same in both sets."""

    request_duration: Histogram
    time_to_first_token: Histogram
    time_per_output_token: Histogram
    model_load_duration: Histogram


@dataclass(frozen=True, slots=True)
class ClassicInstruments:
    """The classic set (default). Embeddings share ``duration``, told apart by
    ``gen_ai.operation.name``; tokens are one histogram with ``gen_ai.token.type``."""

    duration: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    token_usage: Histogram
    server: ServerInstruments


@dataclass(frozen=True, slots=True)
class LatestInstruments:
    """The latest set (``latest_metrics=True``): usage counters, per-operation token
    histograms, and embeddings as metrics of their own."""

    duration: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    usage_input: Counter
    usage_output: Counter
    usage_cache_read: Counter
    operation_input: Histogram
    operation_output: Histogram
    embeddings_duration: Histogram
    embeddings_input: Histogram
    server: ServerInstruments


Instruments = ClassicInstruments | LatestInstruments


def build_server(meter: Meter) -> ServerInstruments:
    return ServerInstruments(
        request_duration=histogram(meter, SERVER_REQUEST_DURATION),
        time_to_first_token=histogram(meter, SERVER_TIME_TO_FIRST_TOKEN),
        time_per_output_token=histogram(meter, SERVER_TIME_PER_OUTPUT_TOKEN),
        model_load_duration=histogram(meter, MODEL_LOAD_DURATION),
    )


def build_classic(meter: Meter) -> ClassicInstruments:
    return ClassicInstruments(
        duration=histogram(meter, OPERATION_DURATION),
        time_to_first_chunk=histogram(meter, TIME_TO_FIRST_CHUNK),
        time_per_output_chunk=histogram(meter, TIME_PER_OUTPUT_CHUNK),
        token_usage=histogram(meter, TOKEN_USAGE),
        server=build_server(meter),
    )


def build_latest(meter: Meter) -> LatestInstruments:
    return LatestInstruments(
        duration=histogram(meter, INFERENCE_DURATION),
        time_to_first_chunk=histogram(meter, INFERENCE_TIME_TO_FIRST_CHUNK),
        time_per_output_chunk=histogram(meter, INFERENCE_TIME_PER_OUTPUT_CHUNK),
        usage_input=counter(meter, INFERENCE_USAGE_INPUT),
        usage_output=counter(meter, INFERENCE_USAGE_OUTPUT),
        usage_cache_read=counter(meter, INFERENCE_USAGE_CACHE_READ),
        operation_input=histogram(meter, INFERENCE_OPERATION_INPUT),
        operation_output=histogram(meter, INFERENCE_OPERATION_OUTPUT),
        embeddings_duration=histogram(meter, EMBEDDINGS_DURATION),
        embeddings_input=histogram(meter, EMBEDDINGS_INPUT),
        server=build_server(meter),
    )


def build(meter: Meter, latest: bool = False) -> Instruments:
    """Create the instruments of the classic (default) or latest set on ``meter``."""
    return build_latest(meter) if latest else build_classic(meter)


@dataclass(frozen=True, slots=True)
class Insight:
    """Ollama insight instruments (both sets): context, wait, model operations."""

    context_truncations: Counter
    context_utilization: Histogram
    wait_duration: Histogram
    model_operation_duration: Histogram
    model_pulled: Counter


def build_insight(meter: Meter) -> Insight:
    return Insight(
        context_truncations=counter(meter, CONTEXT_TRUNCATIONS),
        context_utilization=histogram(meter, CONTEXT_UTILIZATION),
        wait_duration=histogram(meter, WAIT_DURATION),
        model_operation_duration=histogram(meter, MODEL_OPERATION_DURATION),
        model_pulled=counter(meter, MODEL_PULLED),
    )
