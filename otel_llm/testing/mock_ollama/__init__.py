"""A loopback server that answers like Ollama, byte for byte, with deterministic output.

Tests, demos and benchmarks need the real wire format (NDJSON and SSE framing, Go's JSON
quirks, Go's chunking rule) without a model, and exact numbers to assert. Only
``created_at`` / ``created`` carry the wall clock; everything else follows these rules:

* **Tokens**: ``re.findall(r"\\s*\\S+", text)``; one token per streamed chunk.
* **prompt_eval_count** (unless ``Scenario.prompt_tokens`` is set): the tokens of every
  prompt text, at least 1. Generate: ``system`` + ``prompt``; chat: each message's
  ``content`` (text parts on ``/v1``). Embeddings: each input counts at least 1; summed.
* **eval_count**: thinking tokens + content tokens + one per tool call.
  ``options.num_predict`` (``max_tokens`` on ``/v1``) caps content tokens and turns
  ``done_reason`` into ``length``. When tool calls are emitted the reply text is not.
* **Durations** (ns): ``prompt_eval_duration = prompt * 1 ms``, ``eval_duration =
  eval * 10 ms``, ``load_duration = Scenario.load_duration_ns``, ``total_duration`` = sum.
  ``/api/embed``: ``total_duration = load + prompt * 1 ms``.
* **context** (``/api/generate`` unless ``raw``): ``[1000, 1001, ...]``, prompt + eval ids.
* **Tool-call ids**: ``call_`` + 8 base-36 chars of ``sha1(f"{index}:{name}")``.
* **/v1 ids**: the k-th answered (0-based) chat request is ``chatcmpl-{k % 999}``; the
  k-th completion ``cmpl-{k % 999}``.
* **Embeddings**: 6 significant digits, magnitude in [0.001, 0.1), from
  ``shake_128(text)``; the legacy ``/api/embeddings`` widens them to float64 like Ollama.
* **Context window**: ``options.num_ctx``, else ``Scenario.num_ctx`` (shown in
  ``/api/show`` ``parameters`` and ``/api/ps`` ``context_length``), else 4096, at most
  131072 (``model_info``); a counted prompt longer than it reports the window as
  ``prompt_eval_count`` (Ollama cut it).
* **Model operations**: ``/api/pull`` (any model unless ``MockOllama.pullable`` says
  otherwise: then a mid-stream ``error`` line), ``/api/push``, ``/api/create`` stream
  progress lines (per layer: no ``completed``, half, all; the weights layer is
  ``_size(model)`` bytes, the params layer 1024) ending in ``success``, one line apart by
  the default scenario's ``chunk_delay``; ``/api/copy`` and ``DELETE /api/delete`` answer
  200 with an empty body, 404 for an unknown model.
* **Queueing**: with ``MockOllama.parallel = N`` at most N generate/chat requests are
  served at once (``OLLAMA_NUM_PARALLEL``); the others wait, and the durations they
  report leave the wait out, as Ollama's do.
* **Timing**: ``ttft`` before the response head (Go sends headers with the first flush),
  ``chunk_delay`` between streamed writes; a non-streaming reply waits
  ``ttft + chunk_delay * (chunks - 1)``. ``Scenario.status`` answers after ``ttft``;
  ``error_after`` on a non-streaming request answers 500.

One module per concern: ``_scenario`` (what to answer), ``_encoding`` (Go's JSON and
times), ``_content`` (deterministic tokens, ids, vectors, model metadata), ``_render``
(one plan, four wire formats), ``_app`` (the ASGI routes), ``_server`` (``MockOllama``),
``_files`` (scenario files), ``_cli`` (``otel-llm mock-ollama``). It imports nothing
from ``otel_llm.adapters``: it is the oracle the adapters are tested against.
"""

from otel_llm.testing.mock_ollama._cli import main
from otel_llm.testing.mock_ollama._files import ScenarioSet, load_scenarios, scenario_from_dict
from otel_llm.testing.mock_ollama._scenario import (
    DEFAULT_MODELS,
    RecordedRequest,
    Scenario,
    ToolCall,
)
from otel_llm.testing.mock_ollama._server import MockOllama

__all__ = [
    "DEFAULT_MODELS",
    "MockOllama",
    "RecordedRequest",
    "Scenario",
    "ScenarioSet",
    "ToolCall",
    "load_scenarios",
    "main",
    "scenario_from_dict",
]
