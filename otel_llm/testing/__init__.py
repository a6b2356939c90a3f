"""Testing otel_llm apps: capture LLM traces, query and assert on them, mock Ollama.

* ``capture()`` / the ``llm_trace`` pytest fixture → ``CaptureLLM``: spans and GenAI
  metrics of one test, with LLM-aware queries (``llm_calls``, ``tool_calls``,
  ``agents``, ``workflows``) and fluent assertions (``assert_count``, ``assert_ok``,
  ``assert_tokens``, ``assert_shape``, ``assert_semconv``, ``assert_llm_checks``).
* ``match``: value matchers (``prefix``, ``regex``, ``lt`` ...) for selectors and asserts.
* ``MockOllama`` / the ``mock_ollama`` fixture: a byte-faithful Ollama on 127.0.0.1,
  scripted in code (``Scenario``) or by a YAML/JSON file (``load_scenarios``).
* ``otlp_json``: read OTLP JSON traces back (writing: ``otel_llm.otlp_json``).
* ``spec``: YAML specs of named checks, run by ``assert_spec()`` and ``otel-llm check``.

Words, one meaning each: a **problem** is what a finder (``_problems``) reports about
spans; an **assertion** (``assert_*``) raises ``AssertionError`` with the problems and
the trace; a **spec** is a YAML list of named **checks** (selector + ``expect``); the
**LLM checks** are the built-in ones (semconv, content policy, metrics vs traces, run by
``assert_llm_checks()`` / ``--llm-checks``); ``otel-llm check`` runs a spec on exported
traces.

The pytest plugin (``otel_llm.testing.plugin``) is registered through the ``pytest11``
entry point: installing ``otel-llm[testing]`` is enough. See ``docs/testing.md``.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from otel_llm.testing._capture import CaptureLLM, IncrementalIdGenerator, capture
    from otel_llm.testing._model import SpanRecord
    from otel_llm.testing._view import SpanSet, SpanView, TraceView
    from otel_llm.testing.match import (
        absent,
        between,
        contains,
        eq,
        exists,
        ge,
        gt,
        le,
        lt,
        ne,
        one_of,
        prefix,
        regex,
        satisfies,
        suffix,
    )
    from otel_llm.testing.mock_ollama import (
        MockOllama,
        Scenario,
        ScenarioSet,
        ToolCall,
        load_scenarios,
    )

__all__ = [
    "CaptureLLM",
    "IncrementalIdGenerator",
    "MockOllama",
    "Scenario",
    "ScenarioSet",
    "SpanRecord",
    "SpanSet",
    "SpanView",
    "ToolCall",
    "TraceView",
    "absent",
    "between",
    "capture",
    "contains",
    "eq",
    "exists",
    "ge",
    "gt",
    "le",
    "load_scenarios",
    "lt",
    "ne",
    "one_of",
    "prefix",
    "regex",
    "satisfies",
    "suffix",
]

_HOMES = {
    "SpanRecord": "_model",
    "SpanSet": "_view",
    "SpanView": "_view",
    "TraceView": "_view",
    "CaptureLLM": "_capture",
    "IncrementalIdGenerator": "_capture",
    "capture": "_capture",
    "MockOllama": "mock_ollama",
    "Scenario": "mock_ollama",
    "ScenarioSet": "mock_ollama",
    "ToolCall": "mock_ollama",
    "load_scenarios": "mock_ollama",
}


def __getattr__(name: str) -> typing.Any:
    """Imported on first use: the pytest plugin loads in every pytest run, keep it light."""
    home = _HOMES.get(name) or ("match" if name in __all__ else None)
    if home is None:
        raise AttributeError(f"module 'otel_llm.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"otel_llm.testing.{home}"), name)
    globals()[name] = value
    return value
