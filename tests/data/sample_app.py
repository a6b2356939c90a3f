"""A small instrumented app (RAG, an agent with a tool, a failing call, an OpenAI client).

Its traces are what ``tests/test_check.py`` exports and checks, and what
``record.py`` recorded into this folder. Run it against the mock with
``tests/data/scenarios.yaml``: four traces, one per workflow.
"""

from __future__ import annotations

import contextlib
from typing import Any

import ollama
import openai

import otel_llm

QUESTION = "Why is the sky blue?"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def answer(client: ollama.Client) -> str:
    """Trace 1: retrieve (embeddings), then chat."""
    with otel_llm.workflow("answer-question"):
        with otel_llm.retrieval("docs"):
            client.embed(model="all-minilm", input=QUESTION)
        reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": QUESTION}])
    return reply.message.content or ""


def weather(client: ollama.Client) -> str:
    """Trace 2: an agent whose model asks for a tool, then answers (streamed)."""
    messages: list[Any] = [{"role": "user", "content": "Weather in Tokyo?"}]
    with otel_llm.workflow("weather-question"), otel_llm.agent("weather"):
        first = client.chat(model="qwen3:8b", messages=messages, tools=[WEATHER], think=True)
        messages.append(first.message)
        for call in first.message.tool_calls or []:
            with otel_llm.tool(call.function.name):
                messages.append({"role": "tool", "content": "22 C, clear"})
        parts = client.chat(model="qwen3:8b", messages=messages, stream=True)
        return "".join(part.message.content or "" for part in parts)


def broken(client: ollama.Client) -> None:
    """Trace 3: the server answers 503; the app copes."""
    with otel_llm.workflow("broken-question"), contextlib.suppress(ollama.ResponseError):
        client.chat(model="down", messages=[{"role": "user", "content": QUESTION}])


def via_openai(base_url: str) -> str:
    """Trace 4: the OpenAI client on Ollama's /v1, streamed with usage."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="ollama")
    with otel_llm.workflow("openai-question"):
        stream = client.chat.completions.create(
            model="llama3.2",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    client.close()
    return text


def run(base_url: str) -> None:
    """All four traces, in order."""
    client = ollama.Client(host=base_url)
    answer(client)
    weather(client)
    broken(client)
    via_openai(base_url)
