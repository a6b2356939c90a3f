"""The mock's model operations, context window and queue, through real sockets.

The oracle for otel_llm's model-operation adapter and context-window judgement: the
shapes follow Ollama's API reference (progress lines, empty 200 bodies, 404 texts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.test_mock_ollama import go_json, raw_exchange


@pytest.fixture
def mock() -> Iterator[MockOllama]:
    with MockOllama({"small": Scenario(num_ctx=32)}) as server:
        yield server


def lines(chunks: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in b"".join(chunks).splitlines()]


class TestPull:
    def test_progress_lines(self, mock: MockOllama) -> None:
        """Manifest, per layer (no completed, half, all), verify, write, success; one chunk each."""
        headers, chunks = raw_exchange(mock, "/api/pull", {"model": "tinyllama"})
        assert "application/x-ndjson" == headers["content-type"]
        assert all(c.endswith(b"\n") and c.count(b"\n") == 1 for c in chunks)
        assert all(go_json(c.rstrip(b"\n")) == c.rstrip(b"\n") for c in chunks)
        records = lines(chunks)
        statuses = [r["status"] for r in records]
        weights, params = records[1]["digest"], records[4]["digest"]
        assert [
            "pulling manifest",
            *[f"pulling {weights[7:19]}"] * 3,
            *[f"pulling {params[7:19]}"] * 3,
            "verifying sha256 digest",
            "writing manifest",
            "success",
        ] == statuses
        assert ["digest", "status", "total"] == sorted(records[1])
        total = records[1]["total"]
        assert [total // 2, total] == [records[2]["completed"], records[3]["completed"]]
        assert (1024, 1024) == (records[4]["total"], records[6]["completed"])

    def test_pulled_model_is_listed(self, mock: MockOllama) -> None:
        """After a pull the model is in /api/tags."""
        raw_exchange(mock, "/api/pull", {"model": "tinyllama"})
        names = [m["name"] for m in httpx.get(f"{mock.url}/api/tags").json()["models"]]
        assert "tinyllama:latest" in names

    def test_unknown_to_the_registry(self, mock: MockOllama) -> None:
        """Status 200, then an error line after the manifest line."""
        mock.pullable = set()
        _, chunks = raw_exchange(mock, "/api/pull", {"model": "ghost"})
        assert [
            b'{"status":"pulling manifest"}\n',
            b'{"error":"pull model manifest: file does not exist"}\n',
        ] == chunks

    def test_not_streamed(self, mock: MockOllama) -> None:
        """stream:false answers the last object alone, without a newline."""
        response = httpx.post(f"{mock.url}/api/pull", json={"model": "x", "stream": False})
        assert (200, b'{"status":"success"}') == (response.status_code, response.content)


class TestOtherOperations:
    def test_push_and_create(self, mock: MockOllama) -> None:
        """Push: manifest, layers, pushing manifest, success. Create: existing layer, success."""
        _, pushed = raw_exchange(mock, "/api/push", {"model": "llama3.2"})
        assert ["retrieving manifest", "pushing manifest", "success"] == [
            r["status"] for r in lines(pushed) if "digest" not in r
        ]
        _, created = raw_exchange(mock, "/api/create", {"model": "mine", "from": "llama3.2"})
        statuses = [r["status"] for r in lines(created)]
        assert statuses[0].startswith("using existing layer sha256:")
        assert ["writing manifest", "success"] == statuses[1:]

    def test_copy_and_delete(self, mock: MockOllama) -> None:
        """200 with headers only (Content-Length 0, no type); the copy is listed, then gone."""
        with httpx.Client(base_url=mock.url) as client:
            copied = client.post("/api/copy", json={"source": "llama3.2", "destination": "b"})
            listed = [m["name"] for m in client.get("/api/tags").json()["models"]]
            deleted = client.request("DELETE", "/api/delete", json={"model": "b"})
            after = [m["name"] for m in client.get("/api/tags").json()["models"]]
        assert (200, b"", "0", None) == (
            copied.status_code,
            copied.content,
            copied.headers["content-length"],
            copied.headers.get("content-type"),
        )
        assert (200, b"") == (deleted.status_code, deleted.content)
        assert "b:latest" in listed and "b:latest" not in after

    def test_unknown_models(self, mock: MockOllama) -> None:
        """Copy, delete and push of a missing model: 404 with Ollama's texts."""
        with httpx.Client(base_url=mock.url) as client:
            answers = [
                client.post("/api/copy", json={"source": "ghost", "destination": "b"}),
                client.request("DELETE", "/api/delete", json={"model": "ghost"}),
                client.post("/api/push", json={"model": "ghost"}),
            ]
        assert [
            (404, b'{"error":"model \\"ghost\\" not found"}'),
            (404, b'{"error":"model \'ghost\' not found"}'),
            (404, b'{"error":"model \'ghost\' not found"}'),
        ] == [(a.status_code, a.content) for a in answers]


class TestContextWindow:
    def test_show_and_ps_report_the_window(self, mock: MockOllama) -> None:
        """A Modelfile num_ctx is in /api/show's parameters and /api/ps; else 4096."""
        show = httpx.post(f"{mock.url}/api/show", json={"model": "small"}).json()
        assert show["parameters"].startswith("num_ctx                        32\n")
        assert 131072 == show["model_info"]["llama.context_length"]
        ps = {
            m["name"]: m["context_length"] for m in httpx.get(f"{mock.url}/api/ps").json()["models"]
        }
        assert (32, 4096) == (ps["small:latest"], ps["llama3.2:latest"])

    @pytest.mark.parametrize(
        ("model", "options", "expected"),
        [("small", {}, 32), ("llama3.2", {"num_ctx": 10}, 10), ("llama3.2", {}, 40)],
    )
    def test_a_long_prompt_is_cut_to_the_window(
        self, mock: MockOllama, model: str, options: dict[str, Any], expected: int
    ) -> None:
        """40 prompt tokens: the window's worth is evaluated when the window is smaller."""
        body = {"model": model, "prompt": "w " * 40, "stream": False, "options": options}
        answer = httpx.post(f"{mock.url}/api/generate", json=body).json()
        assert expected == answer["prompt_eval_count"]


class TestQueue:
    def test_parallel_one_serves_in_turn(self, mock: MockOllama) -> None:
        """With parallel=1 a quick call behind a slow one is answered after it, not before."""
        mock.parallel = 1
        mock.scenarios["slow"] = Scenario(ttft=0.3)
        answered: dict[str, tuple[str, str]] = {}

        def call(model: str) -> None:
            reply = httpx.post(
                f"{mock.url}/api/chat",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream": False,
                },
                timeout=10,
            ).json()
            # created_at is stamped when the answer is built: the server's own order.
            stamp, _, fraction = reply["created_at"].rstrip("Z").partition(".")
            answered[model] = (stamp, fraction.ljust(9, "0"))

        first = threading.Thread(target=call, args=("slow",))
        first.start()
        while not any(r.path == "/api/chat" for r in mock.requests):
            threading.Event().wait(0.005)
        call("llama3.2")  # no delay of its own, but the only slot is taken: it waits
        first.join()
        assert answered["slow"] <= answered["llama3.2"]
