"""Call chains: wrap the app's own steps so a trace reads request → retrieve → chat → tool.

Each helper is both a context manager and a decorator (sync or async functions),
and opens an INTERNAL span named per the GenAI agent conventions
(``invoke_workflow {name}``, ``invoke_agent {name}``, ``execute_tool {name}``,
``retrieval {name}``). LLM calls made inside become its children.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_llm import semconv as sc
from otel_llm.version import __version__

__all__ = ["Step", "agent", "retrieval", "tool", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])


class Step:
    """One app step as a span; ``with step:`` or ``@step``."""

    def __init__(self, operation: str, name: str, attributes: dict[str, AttributeValue]) -> None:
        self.operation = operation
        self.name = name
        self.attributes = {sc.OPERATION_NAME: operation, **attributes}
        self._open: list[Any] = []  # one per ``with`` still open: the same step may nest

    @contextmanager
    def _span(self) -> Iterator[Span]:
        tracer = trace.get_tracer("otel_llm", __version__)
        with tracer.start_as_current_span(
            f"{self.operation} {self.name}" if self.name else self.operation,
            kind=SpanKind.INTERNAL,
            attributes=self.attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:512] or None))
                span.record_exception(exc)
                raise

    def __enter__(self) -> Span:
        cm = self._span()
        span: Span = cm.__enter__()
        self._open.append(cm)
        return span

    def __exit__(self, *exc_info: Any) -> bool | None:
        return cast("bool | None", self._open.pop().__exit__(*exc_info))

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._span():
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._span():
                return fn(*args, **kwargs)

        return cast(F, run)


def workflow(name: str, **attributes: AttributeValue) -> Step:
    """The whole request the app serves (``invoke_workflow``)."""
    return Step(sc.INVOKE_WORKFLOW, name, {sc.WORKFLOW_NAME: name, **attributes})


def agent(
    name: str,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    **attributes: AttributeValue,
) -> Step:
    """An agent's turn (``invoke_agent``)."""
    attrs: dict[str, AttributeValue] = {sc.AGENT_NAME: name, **attributes}
    if agent_id:
        attrs[sc.AGENT_ID] = agent_id
    if description:
        attrs[sc.AGENT_DESCRIPTION] = description
    return Step(sc.INVOKE_AGENT, name, attrs)


def tool(
    name: str,
    *,
    call_id: str | None = None,
    description: str | None = None,
    **attributes: AttributeValue,
) -> Step:
    """A tool the model asked for, run by the app (``execute_tool``)."""
    attrs: dict[str, AttributeValue] = {sc.TOOL_NAME: name, sc.TOOL_TYPE: "function", **attributes}
    if call_id:
        attrs[sc.TOOL_CALL_ID] = call_id
    if description:
        attrs[sc.TOOL_DESCRIPTION] = description
    return Step(sc.EXECUTE_TOOL, name, attrs)


def retrieval(name: str, **attributes: AttributeValue) -> Step:
    """A retrieval step (vector search, RAG lookup) before the model is called."""
    return Step(sc.RETRIEVAL, name, {sc.DATA_SOURCE_ID: name, **attributes})
