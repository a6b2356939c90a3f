"""``otel-llm mock-ollama``: serve a mock in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from otel_llm.testing.mock_ollama._files import load_scenarios
from otel_llm.testing.mock_ollama._scenario import DEFAULT_MODELS, Scenario
from otel_llm.testing.mock_ollama._server import MockOllama


def main(argv: Sequence[str] | None = None) -> int:
    """``otel-llm mock-ollama``: serve in the foreground until Ctrl-C."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["mock-ollama"]:
        args_in = args_in[1:]
    parser = argparse.ArgumentParser(
        prog="otel-llm mock-ollama", description="Serve a deterministic mock Ollama."
    )
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first byte")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--reply", default=Scenario.reply, help="text every model answers")
    parser.add_argument("--model", action="append", dest="models", help="repeatable")
    parser.add_argument(
        "--scenario", metavar="FILE", help="YAML/JSON scenario file (models, default, listed)"
    )
    args = parser.parse_args(args_in)
    default = Scenario(reply=args.reply, ttft=args.ttft, chunk_delay=args.chunk_delay)
    mock = MockOllama(default=default, models=args.models or DEFAULT_MODELS, port=args.port)
    if args.scenario:
        try:
            scripted = load_scenarios(args.scenario)
        except (OSError, ValueError) as exc:
            print(f"otel-llm mock-ollama: {exc}", file=sys.stderr)
            return 2
        flags = {"reply": args.reply, "ttft": args.ttft, "chunk_delay": args.chunk_delay}
        changed = {k: v for k, v in flags.items() if v != getattr(Scenario, k)}
        mock = MockOllama(
            scripted.scenarios,
            default=replace(scripted.default, **changed),
            models=scripted.models + [m for m in args.models or () if m not in scripted.models],
            port=args.port,
        )
    try:
        mock.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(mock.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        mock.stop()
    return 0
