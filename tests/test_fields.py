"""Top-level JSON fields read without decoding the bulky ones (``_fields.top_level``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llm import _fields
from otel_llm._fields import SMALL, top_level
from otel_llm.adapters._common import REQUEST_BULK
from tests.conftest import Spans

SKIP = frozenset({b"messages", b"prompt"})
PROMPT = "Context: " + 'He said "stop" twice, then \\ left. ' * 200

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


class TestTopLevel:
    @settings(max_examples=100, deadline=None)
    @given(
        st.dictionaries(st.text(max_size=12), values, max_size=6),
        st.text(max_size=300),
        st.sampled_from([(",", ":"), (", ", ": "), None]),
    )
    def test_same_as_json_without_skipped_keys(
        self, fields: dict[str, Any], prompt: str, separators: Any
    ) -> None:
        """Any object, compact, spaced or indented: the kept members are json.loads's own."""
        body_obj = {**fields, "messages": [{"role": "user", "content": PROMPT + prompt}]}
        indent = 1 if separators is None else None
        body = json.dumps(body_obj, separators=separators, indent=indent).encode()
        assert len(body) > SMALL
        expected = {k: v for k, v in body_obj.items() if k.encode() not in SKIP}
        found = top_level(body, SKIP)
        assert found is not None
        # skipped keys are left out, unless many small parts made decoding whole cheaper
        assert expected == {k: v for k, v in found.items() if k.encode() not in SKIP}

    def test_not_an_object(self) -> None:
        """Arrays, truncated or trailing-garbage bodies are not objects: None."""
        big = json.dumps({"model": "m", "prompt": PROMPT}).encode()
        assert [None, None, None] == [
            top_level(json.dumps([PROMPT]).encode(), SKIP),
            top_level(big[:-3], SKIP),
            top_level(big + b"x", SKIP),
        ]

    def test_many_small_parts_decoded_whole(self) -> None:
        """A long chat history is decoded by json.loads after all, with the same result."""
        history = [{"role": "user", "content": f"message {i}"} for i in range(500)]
        body = json.dumps({"messages": history, "model": "m", "stream": False}).encode()
        assert {"messages": history, "model": "m", "stream": False} == top_level(body, SKIP)


def test_a_megabyte_prompt_is_never_decoded(spans: Spans, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the request decodes only small slices, however long the prompt (every
    decode of a request or response goes through ``_fields.json_value``)."""
    decoded: list[int] = []
    real = _fields.json_value

    def spy(data: Any, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(data))
        return real(data, *args, **kwargs)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model": "llama3.2", "done": True, "eval_count": 1})

    payload = {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PROMPT * 150},
        ],
        "images": None,
        "stream": False,
        "options": {"temperature": 0.2, "num_predict": 64},
    }
    body = json.dumps(payload).encode()
    assert len(body) > 1_000_000
    client = httpx.Client(transport=httpx.MockTransport(handler))
    monkeypatch.setattr(_fields, "json_value", spy)
    client.post("http://127.0.0.1:11434/api/chat", content=body)
    monkeypatch.undo()
    attrs = spans.one().attributes
    assert ("llama3.2", 0.2, 64) == (
        attrs["gen_ai.request.model"],
        attrs["gen_ai.request.temperature"],
        attrs["gen_ai.request.max_tokens"],
    )
    assert "gen_ai.request.stream" not in attrs
    assert decoded and max(decoded) < 1024
    assert b"messages" in REQUEST_BULK
