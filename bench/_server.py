"""The benchmark's Ollama: the mock, in its own process, with one model per stream shape.

``otel-llm mock-ollama`` has no way to set ``Scenario.chunks``, so the benchmark serves
``MockOllama`` itself. Models (``bench/_worker.py`` asks for them by name):

* ``bench-call``: the mock's default reply, unstreamed calls (no delay).
* ``bench-stream``: ``--chunks`` content chunks (200), ``--chunk-delay`` apart, so each
  chunk reaches the client in its own read, as tokens from a real Ollama do.
* ``bench-rss``: ``--rss-chunks`` content chunks (50,000), back to back (memory only).

Prints the base URL on the first line of stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from otel_llm.testing.mock_ollama import MockOllama, Scenario

CALL_MODEL = "bench-call"
STREAM_MODEL = "bench-stream"
RSS_MODEL = "bench-rss"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--chunk-delay", type=float, default=0.0002)
    parser.add_argument("--rss-chunks", type=int, default=50_000)
    args = parser.parse_args()
    scenarios = {
        CALL_MODEL: Scenario(),
        STREAM_MODEL: Scenario(chunks=args.chunks, chunk_delay=args.chunk_delay),
        RSS_MODEL: Scenario(chunks=args.rss_chunks),
    }
    mock = MockOllama(scenarios, models=list(scenarios), port=args.port)
    mock.requests = _Discard()  # no per-request record: 100,000s of requests, steady memory
    mock.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(mock.url, flush=True)
    while not stop.wait(3600):
        pass
    mock.stop()
    return 0


class _Discard(list):  # type: ignore[type-arg]
    """A ``requests`` list that keeps nothing."""

    def append(self, item: object) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
