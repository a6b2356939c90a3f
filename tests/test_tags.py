"""Traffic tagging: baggage in scope becomes attributes of every LLM span."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

import otel_llm
from tests.conftest import Spans
from tests.test_patch import CHAT, Recorder


class TestTags:
    def test_context_manager(self, spans: Spans) -> None:
        """Semconv names for the known tags, the documented prefix for the rest."""
        recorder = Recorder(httpx)
        with otel_llm.tags(session_id="s-1", user_id="u-7", agent="planner", team="search"):
            recorder.client().post("/api/chat", json=CHAT)
        attrs = spans.one().attributes
        assert {
            "session.id": "s-1",
            "user.id": "u-7",
            "gen_ai.agent.name": "planner",
            "otel_llm.tag.team": "search",
        } == {
            k: attrs[k] for k in ("session.id", "user.id", "gen_ai.agent.name", "otel_llm.tag.team")
        }
        assert "session.id=s-1" in recorder.requests[0].headers["baggage"]

    def test_out_of_scope_untagged(self, spans: Spans) -> None:
        """After the block, calls carry no tags."""
        with otel_llm.tags(user_id="u-7"):
            pass
        Recorder(httpx).client().post("/api/chat", json=CHAT)
        assert "user.id" not in spans.one().attributes

    def test_decorator_async(self, spans: Spans) -> None:
        """As a decorator on a coroutine function."""

        async def handler(request: Any) -> httpx.Response:
            return httpx.Response(200, json={"model": "m", "done": True})

        @otel_llm.tags(session_id="s-async")
        async def ask() -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                await client.post("http://127.0.0.1:11434/api/chat", json=CHAT)

        asyncio.run(ask())
        assert "s-async" == spans.one().attributes["session.id"]

    def test_allow_list(self, collected: Spans) -> None:
        """Baggage keys outside the allow-list stay out of spans unless configured."""
        from opentelemetry import baggage, context

        otel_llm.instrument(baggage_keys=["tenant"])
        ctx = baggage.set_baggage("tenant", "acme", baggage.set_baggage("secret", "x"))
        token = context.attach(ctx)
        try:
            Recorder(httpx).client().post("/api/chat", json=CHAT)
        finally:
            context.detach(token)
        attrs = collected.one().attributes
        assert ("acme", False) == (attrs["tenant"], "secret" in attrs)

    def test_long_values_capped(self, spans: Spans) -> None:
        """A tag copied from baggage is cut to the documented limit, like every traffic string."""
        from otel_llm.adapters._common import MAX_TEXT_LENGTH

        with otel_llm.tags(team="t" * 10_000):
            Recorder(httpx).client().post("/api/chat", json=CHAT)
        assert "t" * MAX_TEXT_LENGTH == spans.one().attributes["otel_llm.tag.team"]
