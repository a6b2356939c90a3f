"""A CI smoke run: drive the app against the (mock) Ollama, exporting its traces.

    OTEL_LLM_TRACES_FILE=reports/traces.jsonl python examples/ci/smoke.py   # OTLP JSON file
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python examples/ci/smoke.py --otlp

Replace ``answer`` with your app's entry points; ``otel-llm check --spec
examples/ci/llm-checks.yaml`` then asserts on what they did.
"""

from __future__ import annotations

import os
import sys

import ollama

import otel_llm

QUESTIONS = ["Why is the sky blue?", "Why is the sea blue?", "What is Rayleigh scattering?"]


def answer(question: str) -> str:
    """The app under test (the example of docs/testing.md)."""
    client = ollama.Client()  # OLLAMA_HOST
    with otel_llm.workflow("answer-question"):
        with otel_llm.retrieval("docs"):
            client.embed(model="all-minilm", input=question)
        reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": question}])
    return reply.message.content or ""


def main() -> int:
    if "--otlp" not in sys.argv[1:]:
        from otel_llm.otlp_json import install

        install(os.environ.get("OTEL_LLM_TRACES_FILE", "reports/traces.jsonl"))
    # else: instrument() builds an OTLP exporter from OTEL_EXPORTER_OTLP_ENDPOINT
    otel_llm.instrument()
    for question in QUESTIONS:
        print(f"{question} -> {answer(question)}")
    otel_llm.uninstrument()
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()  # flush batched exports before the process exits
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
