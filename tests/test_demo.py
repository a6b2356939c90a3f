"""`make demo` as a user runs it: no Ollama reachable, so the built-in mock answers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys


def test_demo_prints_the_traced_chain() -> None:
    """The demo falls back to the mock and prints trace trees and metrics."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OLLAMA"))}
    env["OLLAMA_HOST"] = f"127.0.0.1:{closed}"
    out = subprocess.run(
        [sys.executable, "-m", "otel_llm.demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert 0 == out.returncode, out.stderr
    text = out.stdout
    assert "using the built-in mock Ollama" in text
    for line in (
        "invoke_workflow weather-question",
        "└─ retrieval city-notes",
        "└─ embeddings all-minilm",
        "└─ execute_tool get_weather",
        "tool_calls=['get_weather']",
        "└─ text_completion llama3.2",
        "invoke_workflow async-answer",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "invoke_workflow ollama-insight",
        "ollama.context.truncations",
        "ollama.model.pulled",
        "ollama.request.wait.duration",
    ):
        assert line in text, text
    assert 4 == text.count("\ntrace ")
    insight = text[text.index("invoke_workflow ollama-insight") : text.index("\nmetrics")]
    lines = insight.splitlines()
    # The pull: its progress read to success, bytes and layers.
    assert re.search(r"└─ pull llama3\.2 .*status=success  bytes=(\d+)/\1 layers=2", insight)
    # The prompt cut to fit num_ctx=256: the window full, flagged.
    assert [
        "tokens in=256" in line and "context=256 (request) used=100%  TRUNCATED" in line
        for line in lines
    ].count(True) == 1, insight
    # Three calls at once on a server serving one at a time: the last waited for two
    # others (each held at least 90 ms by the mock) outside Ollama's own clock.
    waited = [float(ms) for ms in re.findall(r"waited=([\d.]+) ms outside Ollama", insight)]
    assert 2 <= len(waited), insight
    assert max(waited) >= 90.0, insight
