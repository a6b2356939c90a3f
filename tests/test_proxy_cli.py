"""``otel-llm proxy`` as a real process: env configuration, curl through it, spans, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in a stream of JSON log lines and pretty-printed spans."""
    decoder = json.JSONDecoder()
    out, index = [], 0
    while True:
        start = text.find("{", index)
        if start < 0:
            return out
        try:
            obj, index = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(obj, dict):
            out.append(obj)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(default=Scenario(chunk_delay=0.005)) as server:
        yield server


class TestCommand:
    def test_serves_traces_and_stops(self, mock: MockOllama, tmp_path: Path) -> None:
        """From env vars: serves curl with auth, continues its trace, exports spans, exits 0."""
        curl = require("curl")
        tokens = tmp_path / "tokens"
        tokens.write_text("cli-secret\n")
        env = {
            **os.environ,
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LLM_PROXY_UPSTREAM": mock.url,
            "OTEL_LLM_PROXY_LISTEN": "127.0.0.1:0",
            "OTEL_LLM_PROXY_ADMIN": "127.0.0.1:0",
            "OTEL_LLM_PROXY_TOKEN_FILE": str(tokens),
        }
        cmd = [sys.executable, "-m", "otel_llm.cli", "proxy", "--shutdown-timeout", "2"]
        with subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            try:
                assert proc.stdout is not None
                started = json.loads(proc.stdout.readline())
                listen, admin = started["listen"], started["admin"]
                chat = subprocess.run(
                    [
                        curl,
                        "-sSN",
                        listen + "/api/chat",
                        "-H",
                        "Authorization: Bearer cli-secret",
                        "-H",
                        f"traceparent: 00-{TRACE_ID}-{CALLER_SPAN}-01",
                        "-H",
                        "baggage: session.id=cli-session",
                        "-d",
                        '{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}',
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                refused = subprocess.run(
                    [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", listen + "/api/tags"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                metrics = subprocess.run(
                    [curl, "-sS", admin + "/metrics"], capture_output=True, text=True, timeout=30
                )
            finally:
                time.sleep(0.2)  # the access log line follows the last byte
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=20)
        records = [json.loads(line) for line in chat.stdout.splitlines()]
        found = objects(out)
        spans = {(s["kind"], s["attributes"].get("url.path")): s for s in found if "context" in s}
        logs = [o for o in found if o.get("event") == "request"]
        server = spans["SpanKind.SERVER", "/api/chat"]
        genai = spans["SpanKind.CLIENT", None]
        assert (0, True, "401") == (proc.returncode, records[-1]["done"], refused.stdout)
        assert (
            f"0x{TRACE_ID}",
            f"0x{CALLER_SPAN}",
            server["context"]["span_id"],
            "cli-session",
            "chat llama3.2",
        ) == (
            genai["context"]["trace_id"],
            server["parent_id"],
            genai["parent_id"],
            genai["attributes"]["session.id"],
            genai["name"],
        )
        assert [(200, TRACE_ID), (401, None)] == [
            (e["status"], e["trace_id"] if e["status"] == 200 else None) for e in logs
        ]
        assert "gen_ai_client_operation_duration_seconds_bucket" in metrics.stdout
        assert "cli-secret" not in out + err
        assert any(o.get("event") == "proxy stopped" for o in found)
