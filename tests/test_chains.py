"""Call chains: the app's own steps as spans, with LLM calls as their children."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm.chains import Step
from tests.conftest import Spans
from tests.test_patch import CHAT, Recorder


def by_name(spans: Spans) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans.all()}


class TestNames:
    @pytest.mark.parametrize(
        ("step", "name", "attributes"),
        [
            (
                otel_llm.workflow("answer"),
                "invoke_workflow answer",
                {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "answer"},
            ),
            (
                otel_llm.agent("planner", agent_id="a-1", description="plans"),
                "invoke_agent planner",
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "planner",
                    "gen_ai.agent.id": "a-1",
                    "gen_ai.agent.description": "plans",
                },
            ),
            (
                otel_llm.tool("get_weather", call_id="call_1"),
                "execute_tool get_weather",
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.type": "function",
                    "gen_ai.tool.call.id": "call_1",
                },
            ),
            (
                otel_llm.retrieval("docs"),
                "retrieval docs",
                {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "docs"},
            ),
        ],
    )
    def test_span_per_convention(
        self, spans: Spans, step: Step, name: str, attributes: dict[str, str]
    ) -> None:
        """Each helper opens one INTERNAL span named and attributed per the GenAI conventions."""
        with step:
            pass
        span = by_name(spans)[name]
        assert (SpanKind.INTERNAL, attributes) == (span.kind, dict(span.attributes or {}))


class TestChain:
    def test_llm_calls_are_children(self, spans: Spans) -> None:
        """workflow → agent → chat, tool: parentage follows the with-blocks."""
        client = Recorder(httpx).client()
        with otel_llm.workflow("trip"), otel_llm.agent("planner"):
            client.post("/api/chat", json=CHAT)
            with otel_llm.tool("get_weather"):
                pass
        named = by_name(spans)
        workflow, agent = named["invoke_workflow trip"], named["invoke_agent planner"]
        chat, tool = spans.one(), named["execute_tool get_weather"]
        assert agent.parent is not None and chat.parent is not None and tool.parent is not None
        assert (workflow.context.span_id, agent.context.span_id, agent.context.span_id) == (
            agent.parent.span_id,
            chat.parent.span_id,
            tool.parent.span_id,
        )

    def test_same_step_nests(self, spans: Spans) -> None:
        """One Step object entered twice, nested, gives two spans, inner ended first."""
        step = otel_llm.agent("loop")
        with step, step:
            pass
        first, second = spans.all()
        assert second.context.span_id == (first.parent.span_id if first.parent else None)


class TestErrors:
    def test_exception_marks_and_propagates(self, spans: Spans) -> None:
        """The app's exception passes through untouched; the span is ERROR with its class."""
        with pytest.raises(KeyError, match="city"), otel_llm.tool("lookup"):
            raise KeyError("city")
        span = by_name(spans)["execute_tool lookup"]
        assert (StatusCode.ERROR, "KeyError") == (
            span.status.status_code,
            (span.attributes or {})["error.type"],
        )
        assert ["exception"] == [event.name for event in span.events]

    def test_success_leaves_status_unset(self, spans: Spans) -> None:
        with otel_llm.retrieval("docs"):
            pass
        assert StatusCode.UNSET == by_name(spans)["retrieval docs"].status.status_code


class TestDecorator:
    def test_sync(self, spans: Spans) -> None:
        """As a decorator the step wraps each call, and the return value is the function's."""

        @otel_llm.tool("add")
        def add(a: int, b: int) -> int:
            return a + b

        assert (3, 7) == (add(1, 2), add(3, 4))
        assert 2 == len([s for s in spans.all() if s.name == "execute_tool add"])

    def test_async(self, spans: Spans) -> None:
        """On a coroutine function the span covers the awaited body, errors included."""

        @otel_llm.agent("async-agent")
        async def run(fail: bool) -> str:
            await asyncio.sleep(0)
            if fail:
                raise RuntimeError("boom")
            return "ok"

        assert "ok" == asyncio.run(run(False))
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(run(True))
        statuses = [
            s.status.status_code for s in spans.all() if s.name == "invoke_agent async-agent"
        ]
        assert [StatusCode.UNSET, StatusCode.ERROR] == statuses
