"""Scenario files (YAML or JSON) and their validation.

Field types come from ``Scenario``'s annotations (one list: the dataclass), plus the
file-only spellings ``tokens`` and ``load_duration`` (seconds)::

    models:                      # model name -> Scenario fields (see Scenario)
      llama3.2: {reply: "Hello there", ttft: 0.2, chunk_delay: 0.01}
      qwen3:8b:
        thinking: "Tokyo is in Japan."
        tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]
      broken: {error_after: 2}          # native: error line; /v1: cut without [DONE]
      down: {status: 503, error_message: "server overloaded"}
      cold: {load_duration: 4.5}        # seconds (or load_duration_ns)
      chunky: {tokens: ["Hel", "lo", " there"]}   # must follow the token rule
    default: {reply: "..."}     # every other listed model
    listed: [llama3.2, all-minilm]    # /api/tags (default: DEFAULT_MODELS + models)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Final, get_args, get_type_hints

from otel_llm.testing._model import nanoseconds
from otel_llm.testing.mock_ollama._content import _full_name, _tokens
from otel_llm.testing.mock_ollama._scenario import DEFAULT_MODELS, Scenario, ToolCall
from otel_llm.testing.mock_ollama._server import MockOllama

_FILE_KEYS = ("models", "default", "listed")
_FILE_ONLY = ("tokens", "load_duration")  # spellings a file may use besides Scenario's fields


def _int(name: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
    return value


def _seconds(name: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}: {name} must be seconds >= 0, got {value!r}")
    return float(value)


def _text(name: str, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} must be a string, got {value!r}")
    return value


def _tool_calls(name: str, value: Any, where: str) -> list[ToolCall]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: {name} must be a list")
    return [_tool_call(c, f"{where}.{name}[{i}]") for i, c in enumerate(value)]


_READERS: dict[Any, Callable[[str, Any, str], Any]] = {
    int: _int,
    float: _seconds,  # every float field of Scenario is a time in seconds
    str: _text,
    list[ToolCall]: _tool_calls,
}


def _field_readers() -> dict[str, tuple[Callable[[str, Any, str], Any], bool]]:
    """Each ``Scenario`` field's reader and whether it accepts null, from its annotation."""
    readers = {}
    for name, annotation in get_type_hints(Scenario).items():
        args = get_args(annotation) if isinstance(annotation, UnionType) else ()
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), annotation)
        if base not in _READERS:
            raise TypeError(f"Scenario.{name}: scenario files cannot read {annotation}")
        readers[name] = (_READERS[base], optional)
    return readers


_FIELDS: Final = _field_readers()


@dataclass(frozen=True)
class ScenarioSet:
    """What a scenario file describes: per-model scenarios, the default, the listed models."""

    scenarios: dict[str, Scenario]
    default: Scenario
    models: list[str]

    def mock(self, *, port: int = 0) -> MockOllama:
        """A (not yet started) ``MockOllama`` answering with these scenarios."""
        return MockOllama(self.scenarios, default=self.default, models=self.models, port=port)


def _tool_call(raw: Any, where: str) -> ToolCall:
    if isinstance(raw, Mapping) and isinstance(raw.get("function"), Mapping):
        raw = raw["function"]  # the OpenAI shape {type, function: {name, arguments}}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ValueError(f"{where}: a tool call is {{name: str, arguments: {{...}}}}, got {raw!r}")
    unknown = sorted(set(raw) - {"name", "arguments", "id", "type"})
    if unknown:
        raise ValueError(f"{where}: unknown tool call keys {unknown} (use name, arguments)")
    arguments = raw.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: arguments are not JSON: {exc.msg}") from exc
    if not isinstance(arguments, Mapping):
        raise ValueError(f"{where}: arguments must be an object, got {arguments!r}")
    return ToolCall(raw["name"], dict(arguments))


def scenario_from_dict(data: Mapping[str, Any] | None, where: str = "scenario") -> Scenario:
    """A ``Scenario`` from file fields, with readable errors for unknown keys and bad types.

    Besides ``Scenario``'s own fields: ``tokens`` (the reply as its streamed tokens,
    each optional whitespace then non-space text, e.g. ``["The", " sky"]``),
    ``load_duration`` (seconds) and tool calls as ``{name, arguments}``.
    """
    if data is None:
        return Scenario()
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of Scenario fields, got {data!r}")
    values = dict(data)
    tokens = values.pop("tokens", None)
    if tokens is not None:
        if "reply" in values:
            raise ValueError(f"{where}: give reply or tokens, not both")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{where}: tokens must be a list of strings")
        reply = "".join(tokens)
        if list(_tokens(reply)) != tokens:
            raise ValueError(
                f"{where}: tokens {tokens!r} would stream as {list(_tokens(reply))!r}: each"
                " token is optional leading whitespace plus non-space text"
            )
        values["reply"] = reply
    if "load_duration" in values:
        seconds = values.pop("load_duration")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{where}: load_duration must be seconds >= 0, got {seconds!r}")
        values["load_duration_ns"] = nanoseconds(seconds)
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        known = ", ".join((*_FIELDS, *_FILE_ONLY))
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {known})")
    if values.get("tool_calls", ()) is None:
        values["tool_calls"] = []
    for name, value in values.items():
        read, optional = _FIELDS[name]
        if value is not None or not optional:
            values[name] = read(name, value, where)
    status = values.get("status")
    if status is not None and not 400 <= status <= 599:
        raise ValueError(f"{where}: status must be an HTTP error status (400-599), got {status}")
    return Scenario(**values)


def listed_models(models: Iterable[str], scenarios: Iterable[str]) -> list[str]:
    """``models``, then each scenario's model not already among them (``:latest`` optional)."""
    names = list(models)
    known = {_full_name(m) for m in names}
    names.extend(m for m in scenarios if _full_name(m) not in known)
    return names


def _read_scenario_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with otel-llm[testing]
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(
                f"{path}: YAML needs PyYAML (pip install 'otel-llm[testing]')"
            ) from None
    return yaml.safe_load(text)


def load_scenarios(source: str | os.PathLike[str] | Mapping[str, Any]) -> ScenarioSet:
    """Read a scenario file (YAML or JSON) or its already-parsed dict.

    ``{"models": {name: fields}, "default": fields, "listed": [names]}``, all optional.
    """
    where = "scenarios"
    if isinstance(source, Mapping):
        data: Any = source
    else:
        path = Path(source)
        where = str(path)
        data = _read_scenario_file(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping with models/default/listed")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        joined = ", ".join(map(str, unknown))
        raise ValueError(f"{where}: unknown key(s) {joined} (known: models, default, listed)")
    models = data.get("models") or {}
    if not isinstance(models, Mapping):
        raise ValueError(f"{where}: models must map model names to scenarios")
    scenarios = {
        str(name): scenario_from_dict(fields_, f"{where}: models.{name}")
        for name, fields_ in models.items()
    }
    default = scenario_from_dict(data.get("default"), f"{where}: default")
    listed = data.get("listed")
    if listed is None:
        names = listed_models(DEFAULT_MODELS, scenarios)
    elif isinstance(listed, list) and all(isinstance(m, str) for m in listed):
        names = list(listed)
    else:
        raise ValueError(f"{where}: listed must be a list of model names")
    return ScenarioSet(scenarios, default, names)
