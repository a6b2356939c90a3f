"""What each front-end costs per call: httpx, requests and aiohttp, bare vs instrumented.

Usage: ``python bench/frontends.py [--calls N] [--chunks K] [--rounds R]``

Every client streams ``/api/chat`` from the mock Ollama on 127.0.0.1 (K chunks per
reply) and reads it line by line, the way apps do. Bare and instrumented blocks
alternate for R rounds; the report gives the median per-call time of each and the
difference, which is what otel_llm adds (span, parser, metrics). Numbers move with
the machine's load: compare front-ends within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import httpx
import requests
from opentelemetry.sdk.trace import TracerProvider

import otel_llm
from otel_llm.testing.mock_ollama import MockOllama, Scenario

BODY = {"model": "llama3.2", "messages": [{"role": "user", "content": "Say hello"}]}


def _httpx(url: str, calls: int) -> float:
    with httpx.Client() as client:
        start = time.perf_counter()
        for _ in range(calls):
            with client.stream("POST", url, json=BODY) as r:
                for _line in r.iter_lines():
                    pass
        return (time.perf_counter() - start) / calls


def _requests(url: str, calls: int) -> float:
    with requests.Session() as session:
        start = time.perf_counter()
        for _ in range(calls):
            with session.post(url, json=BODY, stream=True) as r:
                for _line in r.iter_lines():
                    pass
        return (time.perf_counter() - start) / calls


def _aiohttp(url: str, calls: int) -> float:
    async def main() -> float:
        async with aiohttp.ClientSession() as session:
            start = time.perf_counter()
            for _ in range(calls):
                async with session.post(url, json=BODY) as r:
                    async for _line in r.content:
                        pass
            return (time.perf_counter() - start) / calls

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[str, int], float]] = {
    "httpx": _httpx,
    "requests": _requests,
    "aiohttp": _aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    provider = TracerProvider()  # spans are made and dropped: no exporter
    scenario = Scenario(reply="word " * args.chunks, chunks=args.chunks)
    with MockOllama({}, default=scenario, models=["llama3.2"]) as mock:
        url = f"{mock.url}/api/chat"
        times: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.rounds):
            for traced in (False, True):
                if traced:
                    otel_llm.instrument(tracer_provider=provider, ollama_hosts=[mock.host])
                for name, run in CLIENTS.items():
                    times.setdefault((name, traced), []).append(run(url, args.calls))
                otel_llm.uninstrument()
    print(f"{args.calls} streamed calls x {args.rounds} rounds, {args.chunks} chunks per reply")
    print(f"{'client':10} {'bare ms':>9} {'traced ms':>10} {'added µs':>9}")
    for name in CLIENTS:
        bare = statistics.median(times[(name, False)]) * 1e3
        traced = statistics.median(times[(name, True)]) * 1e3
        print(f"{name:10} {bare:9.3f} {traced:10.3f} {(traced - bare) * 1e3:9.0f}")


if __name__ == "__main__":
    main()
