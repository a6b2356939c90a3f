"""What the mock answers: ``Scenario`` per model, ``ToolCall``, and ``RecordedRequest``.

A scenario field's type annotation is its validation rule for scenario files
(``_files.scenario_from_dict``): ``int``, ``float`` (seconds, >= 0), ``str``,
``list[ToolCall]``; ``X | None`` also accepts null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2", "qwen3:8b", "all-minilm")


@dataclass
class ToolCall:
    """A function call the mock model makes when the request offers tools."""

    name: str
    arguments: dict[str, Any]


@dataclass
class Scenario:
    """How the mock answers one model."""

    reply: str = "The sky is blue because air scatters blue light."
    thinking: str | None = None  # sent when the request asks to think
    tool_calls: list[ToolCall] = field(default_factory=list)  # sent when it carries tools
    prompt_tokens: int | None = None  # None: counted from the request (module docstring)
    ttft: float = 0.0  # seconds before the first byte
    chunk_delay: float = 0.0  # seconds between streamed chunks
    load_duration_ns: int = 1_000_000  # reported load_duration (big = cold load)
    status: int | None = None  # answer with this HTTP error before any byte
    error_message: str = "simulated failure"
    error_after: int | None = None  # break a stream after N chunks (no done line, no [DONE])
    done_reason: str = "stop"
    embedding_dim: int = 8
    chunks: int | None = None  # stream exactly this many content chunks, cycling the reply
    num_ctx: int | None = None  # the Modelfile's num_ctx (/api/show parameters); else 4096


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received, so tests can assert what a client really sent."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)
