"""`make demo` as a user runs it: no Ollama reachable, so the built-in mock answers."""

from __future__ import annotations

import os
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
    ):
        assert line in text, text
    assert 3 == text.count("\ntrace ")
