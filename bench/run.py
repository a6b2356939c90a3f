#!/usr/bin/env python3
"""``make bench``: what tracing an Ollama call costs the client, side by side in one run.

Stdlib only: it runs under any Python >= 3.10, builds ``bench/.venv`` (the repo plus the
pinned anchors of ``bench/requirements-anchors.txt``) if missing or stale, starts the mock
Ollama (``bench/_server.py``) and one long-lived worker per configuration
(``bench/_worker.py``), and sends them batches in interleaved rounds. Method and caveats:
``bench/README.md``. Results: printed, and written to ``bench/RESULTS.md`` (raw samples
in ``bench/out/raw.json``).

    python3 bench/run.py            # the full run (~5 min of measuring on 2 cores)
    python3 bench/run.py --quick    # a smoke run (~2 min): numbers too noisy to quote
    python3 bench/run.py --profile  # pyinstrument profile of the otel_llm ollama-client call
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV = BENCH / ".venv"
VPY = VENV / "bin" / "python"
REQS = BENCH / "requirements-anchors.txt"
STAMP = VENV / ".installed"
STATUS = VENV / "install-status.json"
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
REPO_EXTRAS = "testing,proxy"
"""The repo's extras in bench/.venv: the mock (testing) and the sidecar proxy's server."""
PROXY_TARGET_MS = 1.0
"""The proxy's goal: at most this much added to p50 latency and to time to first chunk."""

CONFIGS = (
    "bare",
    "bare-2",
    "httpx-instr",
    "otel_llm-spans",
    "otel_llm",
    "otel_llm-lean",
    "otel_llm-baseline",
    "openllmetry",
    "openinference",
)
LABELS = {
    "bare": "bare (no instrumentation)",
    "bare-2": "bare again (A/A check: the noise floor)",
    "httpx-instr": "generic HTTP spans (opentelemetry-instrumentation-httpx / -requests)",
    "otel_llm-spans": "otel_llm, spans only",
    "otel_llm": "otel_llm, spans + metrics",
    "otel_llm-lean": "otel_llm, spans + metrics without gen_ai.server.*",
    "otel_llm-baseline": "otel_llm from --baseline, spans + metrics (before/after)",
    "openllmetry": "OpenLLMetry (opentelemetry-instrumentation-ollama / -openai)",
    "openinference": "OpenInference (openinference-instrumentation-ollama / -openai)",
}
# Which requirement line a configuration needs beyond the repo itself.
NEEDS = {
    "httpx-instr": "opentelemetry-instrumentation-httpx",
    "openllmetry": "opentelemetry-instrumentation-ollama",
    "openinference": "openinference-instrumentation-ollama",
}
ANCHORS = ("httpx-instr", "openllmetry", "openinference")
COVERS = {
    "httpx-instr": ("ollama", "openai", "httpx", "requests"),
    "openllmetry": ("ollama", "openai"),
    "openinference": ("ollama", "openai"),
}
"""The clients each anchor can trace (OpenLLMetry and OpenInference wrap the SDKs, so raw
HTTP calls never reach them; no aiohttp instrumentor is installed, see
requirements-anchors.txt). Its other cells are not measured: they read ``NA``."""
NA = "n/a: does not trace this client"
UNTRACED = ("bare", "bare-2")  # configurations expected to export no span
OURS = ("otel_llm-spans", "otel_llm", "otel_llm-baseline")
BASELINE_ENV = "BENCH_OTEL_LLM_BASELINE"
"""Directory holding another ``otel_llm`` package (``--baseline``), for the worker."""
KINDS = (
    "ollama-sync",
    "ollama-async",
    "openai-sync",
    "openai-async",
    "httpx-sync",
    "httpx-async",
    "requests-sync",
    "aiohttp-async",
)
FRONTENDS = {"requests-sync": "httpx-sync", "aiohttp-async": "httpx-async"}
"""The requests and aiohttp front-ends, each beside the raw httpx call it is compared with."""
SIZES = ("100k", "1m")  # prompt sizes besides the default 1 KB (unstreamed calls only)
SIZED_KINDS = tuple(f"{k}@{size}" for k in KINDS for size in SIZES)
ALL_KINDS = KINDS + SIZED_KINDS
TARGET_KINDS = {
    "ollama-sync": "ollama-sync",
    "ollama-async": "ollama-async",
    "requests-sync": "ollama-sync",
    "aiohttp-async": "ollama-async",
}
"""Kinds with targets -> the kind whose OpenLLMetry row is the yardstick: no peer makes
GenAI spans for raw requests / aiohttp calls, so theirs is OpenLLMetry on the official
client of the same sync/async kind, measured in the same rounds."""
MODES = ("call", "stream")
SIZED_BATCH = {"100k": 5, "1m": 2}  # calls per batch for the large prompts (slow clients)
PAIRED_KINDS = ("ollama-sync", "ollama-async")
PAIRED_SIZES = ("", "100k", "1m")
PAIRED_CONFIGS = ("bare", "otel_llm", "openllmetry")
"""Prompt size paired in one process (``_worker.run_paired``): bare is the null check."""
PAIRED_CELLS = tuple((f"{k}@{z}" if z else k, "paired") for k in PAIRED_KINDS for z in PAIRED_SIZES)
FLAT = 0.2  # "flat within 20% from 1 KB to 1 MB"
CELLS = (
    tuple((k, m) for k in KINDS for m in MODES)
    + tuple((k, "call") for k in SIZED_KINDS)
    + PAIRED_CELLS
)
"""(kind, mode) pairs measured every round."""
RSS_KIND = "ollama-sync"
PLAN_CHUNKS = 200  # content chunks per timed stream (the server's --chunks)
RSS_TARGET_KB = 512  # "within 0.5 MB of bare": 0.5 MiB
BUSY_LOAD = 1.0  # load average from others above which the report warns (ours adds ~1)


@dataclass(frozen=True)
class Plan:
    rounds: int  # every round: each cell, each worker, one small batch
    call_batch: int  # unstreamed calls per batch
    stream_batch: int  # 200-chunk streams per batch
    warm_calls: int
    warm_streams: int
    chunks: int
    rss_chunks: int
    rss_reps: int
    min_rounds: int  # the time budget never cuts a run below this many rounds
    pair_period: float = 0.0
    """Seconds from the start of one paired call to the next, at every prompt size (0, back
    to back, in raw files written before this field). The same code costs more CPU the
    longer ago it last ran: on this VM a piece of our per-call code run 1 ms after its
    last run costs about 2.5x its back-to-back cost, even when the thread spun meanwhile
    rather than slept (the SDK's span code and ``json`` grew 1.7x to 3x). Back to back, a
    1 KB call repeats every 0.6 ms and a 1 MB one every 7 ms, and that difference showed
    as growth with the prompt; spaced equally, only the prompt differs. A real model
    answers in far more than 10 ms, so real calls are at least this far apart."""
    paired_batch: int = 0
    """Pairs per paired batch, the same at every size, since spaced calls take the same
    time at every size (0 in raw files written before this field: not recorded). Spaced
    calls run cold, and a cold call's CPU moves by more: with 6 pairs a batch, a cell's
    median moved by 5 to 30 µs between two runs, near the flatness target's 20 % of about
    220 µs."""


# Small batches, many rounds: configurations compared within a round ran within a
# second of each other, so load that comes and goes hits them alike.
FULL = Plan(
    rounds=150,
    call_batch=13,
    stream_batch=2,
    warm_calls=100,
    warm_streams=10,
    chunks=PLAN_CHUNKS,
    rss_chunks=50_000,
    rss_reps=3,
    min_rounds=30,
    pair_period=0.010,
    paired_batch=12,
)
QUICK = Plan(
    rounds=20,
    call_batch=10,
    stream_batch=1,
    warm_calls=30,
    warm_streams=3,
    chunks=PLAN_CHUNKS,
    rss_chunks=50_000,
    rss_reps=1,
    min_rounds=10,
    pair_period=0.010,
    paired_batch=12,
)


# --- the venv -------------------------------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VPY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines
    return errors[-1][:300] if errors else f"pip exited {proc.returncode}"


def ensure_venv() -> dict[str, str]:
    """``bench/.venv`` with the repo and the anchors; returns {requirement: why it failed}."""
    digest = hashlib.sha256(
        REQS.read_bytes() + (ROOT / "pyproject.toml").read_bytes() + REPO_EXTRAS.encode()
    )
    want = digest.hexdigest()
    if VPY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return dict(json.loads(STATUS.read_text())) if STATUS.exists() else {}
    print(f"bench: building {VENV.relative_to(ROOT)} (repo + {REQS.name}) ...", flush=True)
    if not VPY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    _pip("--upgrade", "pip")
    base = _pip("-e", f"{ROOT}[{REPO_EXTRAS}]")
    if base.returncode != 0:
        sys.exit(f"bench: cannot install the repo into {VENV}: {_last_error(base)}")
    failed: dict[str, str] = {}
    together = _pip("-r", str(REQS))
    if together.returncode != 0:  # find which anchor will not install; keep the others
        for line in REQS.read_text().splitlines():
            req = line.split("#", 1)[0].strip()
            if req:
                one = _pip(req)
                if one.returncode != 0:
                    failed[req] = _last_error(one)
    STATUS.write_text(json.dumps(failed, indent=1))
    STAMP.write_text(want)
    return failed


# --- processes --------------------------------------------------------------------------------


_baseline: list[str] = []  # set by --baseline


def _env() -> dict[str, str]:
    """The caller's environment less anything that changes what an instrumentation does."""
    prefixes = ("OTEL_", "TRACELOOP_", "OPENINFERENCE_", "OLLAMA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if _baseline:
        env[BASELINE_ENV] = _baseline[0]
    return env


def _pin(cpu: int | None) -> Any:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _cpus() -> tuple[int | None, int | None]:
    """Server on one CPU, the measured worker on another (2 cores: 0 and 1)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


class Server:
    def __init__(self, plan: Plan, cpu: int | None) -> None:
        self.proc = subprocess.Popen(
            [
                str(VPY),
                str(BENCH / "_server.py"),
                "--chunks",
                str(plan.chunks),
                "--chunk-delay",
                "0",
                "--rss-chunks",
                str(plan.rss_chunks),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
            preexec_fn=_pin(cpu),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            sys.exit("bench: the mock Ollama did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Worker:
    """One configuration's process; ``ask`` sends a command and waits for its reply."""

    def __init__(self, config: str, url: str, cpu: int | None) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [str(VPY), str(BENCH / "_worker.py"), config, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            preexec_fn=_pin(cpu),
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        hello = self._reply(120)
        self.error: str | None = None if hello.get("ok") else str(hello.get("error"))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())
            del self._stderr[:-20]

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "error": f"no reply in {timeout:.0f} s"}
        if line is None:
            tail = " | ".join(self._stderr[-3:])
            return {"ok": False, "error": f"worker exited ({self.proc.wait()}): {tail}"}
        return dict(json.loads(line))

    def ask(self, timeout: float = 300, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        return self._reply(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ask(timeout=10, cmd="quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Cell:
    """One configuration x client kind x mode: every sample, and each round's."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    rounds: list[dict[str, list[float]]] = field(default_factory=list)
    spans: int = 0
    calls: int = 0
    parts: int = 0
    broken: str | None = None

    def add(self, reply: dict[str, Any]) -> None:
        keys = ("cpu", "wall", "open", "mid", "end", "proc")
        batch = {k: reply[k] for k in keys if k in reply}
        self.rounds.append(batch)
        for k, v in batch.items():
            self.samples.setdefault(k, []).extend(v)
        self.spans += reply["spans"]
        self.calls += reply["calls"]
        if "parts" in reply:
            self.parts = max(reply["parts"])


def measure(
    plan: Plan, workers: dict[str, Worker], log: Any, budget: float, loads: list[float]
) -> dict[tuple[str, str, str], Cell]:
    cells: dict[tuple[str, str, str], Cell] = {(c, k, m): Cell() for c in workers for k, m in CELLS}
    live = {key: True for key in cells}
    for config, kind, mode in cells:
        if kind.partition("-")[0] not in COVERS.get(config, (kind.partition("-")[0],)):
            cells[config, kind, mode].broken = NA
            live[config, kind, mode] = False
        if mode == "paired" and config not in PAIRED_CONFIGS:
            cells[config, kind, mode].broken = "not measured"
            live[config, kind, mode] = False

    def run(config: str, kind: str, mode: str, n: int, keep: bool) -> None:
        cell = cells[config, kind, mode]
        spacing = {"period": plan.pair_period} if mode == "paired" else {}
        reply = workers[config].ask(cmd="batch", kind=kind, mode=mode, n=n, **spacing)
        if not reply.get("ok"):
            cell.broken = f"BROKEN: {reply.get('error')}"
            live[config, kind, mode] = False
        elif config not in UNTRACED and reply["spans"] == 0:
            cell.broken = "BROKEN: 0 spans"  # it traced nothing: not a cost to compare
            live[config, kind, mode] = False
        elif keep:
            cell.add(reply)

    def batch_size(kind: str, mode: str, warm: bool) -> int:
        if mode == "paired":
            return plan.paired_batch
        if "@" in kind:
            return SIZED_BATCH[kind.partition("@")[2]] * (3 if warm else 1)
        if mode == "call":
            return plan.warm_calls if warm else plan.call_batch
        return plan.warm_streams if warm else plan.stream_batch

    log("warm-up (and a first span count) in every worker ...")
    for kind, mode in CELLS:
        for config in workers:
            if live[config, kind, mode]:
                run(config, kind, mode, batch_size(kind, mode, True), keep=False)
    names = list(workers)
    started = time.perf_counter()
    for r in range(plan.rounds):
        t0 = time.perf_counter()
        for i, (kind, mode) in enumerate(CELLS):
            shift = (r + i) % len(names)  # every config takes every place in the order
            for config in names[shift:] + names[:shift]:
                if live[config, kind, mode]:
                    run(config, kind, mode, batch_size(kind, mode, False), keep=True)
        now = time.perf_counter()
        if (r + 1) % 10 == 0 or r + 1 == plan.rounds:
            loads.append(_load1(loadavg()))
            log(
                f"round {r + 1}/{plan.rounds} ({now - t0:.1f} s for the last; load {loads[-1]:.2f})"
            )
        spent = now - started
        if r + 1 >= plan.min_rounds and r + 1 < plan.rounds and spent * (r + 2) / (r + 1) > budget:
            log(
                f"time budget ({budget:.0f} s for the rounds) reached: stopping after round "
                f"{r + 1}; the machine is slower or busier than planned"
            )
            break
    return cells


def measure_rss(
    plan: Plan, url: str, configs: Sequence[str], cpu: int | None, log: Any
) -> dict[str, dict[str, Any]]:
    """One fresh worker per config per repetition, doing only the long stream."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    errors: dict[str, str] = {}
    for rep in range(plan.rss_reps):
        order = list(configs[rep % len(configs) :]) + list(configs[: rep % len(configs)])
        for config in order:
            if config in errors:
                continue
            worker = Worker(config, url, cpu)
            try:
                if worker.error:
                    errors[config] = worker.error
                    continue
                reply = worker.ask(timeout=600, cmd="rss", kind=RSS_KIND)
            finally:
                worker.close()
            if not reply.get("ok"):
                errors[config] = f"BROKEN: {reply.get('error')}"
            elif config not in UNTRACED and reply["spans"] == 0:
                errors[config] = "BROKEN: 0 spans"
            else:
                runs[config].append(reply)
        log(f"peak RSS repetition {rep + 1}/{plan.rss_reps} done")
    out: dict[str, dict[str, Any]] = {}
    for config in configs:
        if config in errors:
            out[config] = {"error": errors[config]}
            continue
        rows = runs[config]
        out[config] = {
            "growth_kb": statistics.median(r["after_kb"] - r["before_kb"] for r in rows),
            "growths_kb": [r["after_kb"] - r["before_kb"] for r in rows],
            "before_kb": statistics.median(r["before_kb"] for r in rows),
            "after_kb": statistics.median(r["after_kb"] for r in rows),
            "parts": rows[0]["parts"],
            "seconds": statistics.median(r["seconds"] for r in rows),
        }
    return out


# --- statistics -----------------------------------------------------------------------------


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def p95(xs: Sequence[float]) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


US = 1e6


def ci(xs: Sequence[float]) -> tuple[float, float]:
    """~95 % confidence interval of the median (order statistics, no assumption on shape)."""
    ordered = sorted(xs)
    n = len(ordered)
    k = max(0, int((n - 1.96 * n**0.5) / 2))
    return ordered[k], ordered[min(n - 1, n - k - 1)]


@dataclass
class Row:
    """One configuration's numbers for one client kind (µs)."""

    config: str
    status: str | None = None  # None: measured; else why not
    spans_per_call: float = 0.0
    call_cpu: float = 0.0
    call_cpu_p95: float = 0.0
    call_wall: float = 0.0
    call_wall_p95: float = 0.0
    added_call: float = 0.0
    added_call_range: tuple[float, float] = (0.0, 0.0)
    added_proc_call: float = 0.0  # whole process (every thread, a metrics collection included)
    added_proc_call_range: tuple[float, float] = (0.0, 0.0)
    stream_status: str | None = None
    stream_cpu: float = 0.0
    stream_cpu_p95: float = 0.0
    stream_wall: float = 0.0
    per_chunk: float = 0.0
    added_chunk: float = 0.0
    added_chunk_range: tuple[float, float] = (0.0, 0.0)
    added_open: float = 0.0
    added_end: float = 0.0
    added_end_range: tuple[float, float] = (0.0, 0.0)
    added_stream: float = 0.0
    added_stream_range: tuple[float, float] = (0.0, 0.0)
    added_proc_stream: float = 0.0
    added_proc_stream_range: tuple[float, float] = (0.0, 0.0)
    stream_spans_per_call: float = 0.0
    # each round's added µs (per call, per chunk, at end of stream): for paired differences
    # between two rows of one configuration (a front-end minus raw httpx)
    call_rounds: list[float] = field(default_factory=list)
    chunk_rounds: list[float] = field(default_factory=list)
    end_rounds: list[float] = field(default_factory=list)
    n_calls: int = 0
    n_streams: int = 0
    rounds: int = 0


def _per_chunk(mids: Sequence[float], parts: int) -> float:
    return med(mids) / max(1, parts - 2)


def _added_proc(cell: Cell, bare: Cell) -> tuple[float, tuple[float, float]]:
    """Whole-process CPU added per call: median and CI over rounds (0 for old raw data)."""
    per_round = [
        (med(a["proc"]) - med(b["proc"])) * US
        for a, b in zip(cell.rounds, bare.rounds, strict=True)
        if "proc" in a and "proc" in b
    ]
    return (med(per_round), ci(per_round)) if per_round else (0.0, (0.0, 0.0))


def summarise(
    cells: dict[tuple[str, str, str], Cell], configs: Sequence[str], unavailable: dict[str, str]
) -> dict[str, list[Row]]:
    tables: dict[str, list[Row]] = {}
    for kind in ALL_KINDS:
        rows: list[Row] = []
        bare_c = cells.get(("bare", kind, "call"))
        bare_s = cells.get(("bare", kind, "stream"))
        for config in configs:
            row = Row(config)
            rows.append(row)
            if config in unavailable:
                row.status = row.stream_status = f"unavailable: {unavailable[config]}"
                continue
            c = cells.get((config, kind, "call"))
            s = cells.get((config, kind, "stream"))
            if c is None:
                row.status = row.stream_status = "not measured"
                continue
            row.status = c.broken
            row.stream_status = "not measured" if s is None else s.broken
            # Against a broken bare cell nothing was measured: say so, not "0 µs added".
            if row.status is None and (bare_c is None or bare_c.broken):
                row.status = f"bare: {bare_c.broken if bare_c else 'not measured'}"
            if row.stream_status is None and (bare_s is None or bare_s.broken):
                row.stream_status = f"bare: {bare_s.broken if bare_s else 'not measured'}"
            if c.broken is None and bare_c is not None and bare_c.broken is None:
                cpu, wall = c.samples["cpu"], c.samples["wall"]
                row.n_calls, row.rounds = len(cpu), len(c.rounds)
                row.spans_per_call = c.spans / max(1, c.calls)
                row.call_cpu, row.call_cpu_p95 = med(cpu) * US, p95(cpu) * US
                row.call_wall, row.call_wall_p95 = med(wall) * US, p95(wall) * US
                per_round = [
                    (med(a["cpu"]) - med(b["cpu"])) * US
                    for a, b in zip(c.rounds, bare_c.rounds, strict=True)
                ]
                row.added_call = med(per_round)
                row.added_call_range = ci(per_round)
                row.call_rounds = per_round
                row.added_proc_call, row.added_proc_call_range = _added_proc(c, bare_c)
            if s is not None and s.broken is None and bare_s is not None and bare_s.broken is None:
                row.stream_spans_per_call = s.spans / max(1, s.calls)
                row.n_streams = len(s.samples["cpu"])
                row.stream_cpu = med(s.samples["cpu"]) * US
                row.stream_cpu_p95 = p95(s.samples["cpu"]) * US
                row.stream_wall = med(s.samples["wall"]) * US
                row.per_chunk = _per_chunk(s.samples["mid"], s.parts) * US
                stream_rounds, chunk_rounds, open_rounds, end_rounds = [], [], [], []
                for a, b in zip(s.rounds, bare_s.rounds, strict=True):
                    ac = (_per_chunk(a["mid"], s.parts) - _per_chunk(b["mid"], bare_s.parts)) * US
                    chunk_rounds.append(ac)
                    open_rounds.append((med(a["open"]) - med(b["open"])) * US)
                    end_rounds.append((med(a["end"]) - med(b["end"])) * US - ac)
                    stream_rounds.append((med(a["cpu"]) - med(b["cpu"])) * US)
                row.added_stream = med(stream_rounds)
                row.added_stream_range = ci(stream_rounds)
                row.added_chunk = med(chunk_rounds)
                row.added_open = med(open_rounds)
                row.added_end = med(end_rounds)
                row.added_chunk_range = ci(chunk_rounds)
                row.added_end_range = ci(end_rounds)
                row.chunk_rounds, row.end_rounds = chunk_rounds, end_rounds
                row.added_proc_stream, row.added_proc_stream_range = _added_proc(s, bare_s)
        tables[kind] = rows
    return tables


Paired = dict[tuple[str, str], list[tuple[float, tuple[float, float]] | None]]
"""(config, kind) -> per prompt size (``PAIRED_SIZES``): added µs, median over rounds, CI."""


def summarise_paired(cells: dict[tuple[str, str, str], Cell]) -> Paired:
    """Each round's median pair difference (traced minus suppressed, one process)."""
    out: Paired = {}
    for config in PAIRED_CONFIGS:
        for kind in PAIRED_KINDS:
            sizes: list[tuple[float, tuple[float, float]] | None] = []
            for size in PAIRED_SIZES:
                cell = cells.get((config, f"{kind}@{size}" if size else kind, "paired"))
                if cell is None or cell.broken or not cell.rounds:
                    sizes.append(None)
                    continue
                per_round = [med(r["cpu"]) * US for r in cell.rounds]
                sizes.append((med(per_round), ci(per_round)))
            out[config, kind] = sizes
    return out


def _spread(sizes: Sequence[tuple[float, tuple[float, float]] | None]) -> float | None:
    """How far the farthest prompt size is from the 1 KB figure, as a fraction of it; None
    when a size is missing or the 1 KB figure is not above zero."""
    medians = [s[0] for s in sizes if s is not None]
    if not medians or len(medians) != len(sizes) or medians[0] <= 0:
        return None
    return max(abs(m - medians[0]) for m in medians) / medians[0]


def paired_table(paired: Paired, plan: Plan) -> list[str]:
    spacing = (
        f"each call starting {1000 * plan.pair_period:.0f} ms after the previous one began, "
        "at every size (`Plan.pair_period`: the same code costs more the longer ago it last "
        "ran, and back to back a 1 MB call repeats ten times less often than a 1 KB one)"
        if plan.pair_period
        else "back to back"
    )
    pairs = (
        f"{plan.paired_batch} pairs per batch"
        if plan.paired_batch
        else "pairs per batch not recorded"
    )
    md = [
        "### Prompt size, paired in one process: added CPU per unstreamed call",
        "",
        "(calling thread µs: traced minus suppressed (`suppress_instrumentation()`) in the "
        f"same worker, in alternating order, {spacing}; median over rounds of each round's "
        "median pair, 95% CI. One process means one heap: the cross-process cells above "
        "also move with allocator and cache layout, which the A/A row shows at 100 KB and "
        "1 MB. Every call starts after a collection (untimed), so the request bodies httpx "
        "leaves in reference cycles are freed in neither call. Bare here is the null "
        f"check: both calls of its pairs are bare. {pairs}.)",
        "",
    ]
    body = []
    for (config, kind), sizes in paired.items():
        if all(s is None for s in sizes):
            continue
        cells = [
            f"**{f1(s[0])}** ({rng(s[1])})" if s is not None else "not measured" for s in sizes
        ]
        spread = _spread(sizes) if config != "bare" else None  # bare's pairs are ~0 µs
        shown = "—" if spread is None else f"{100 * spread:.0f}%"
        body.append([f"`{kind}`", LABELS[config], *cells, shown])
    md += _table(["client", "config", "1 KB", "100 KB", "1 MB", "most off 1 KB"], body)
    md.append("")
    return md


# --- the report -------------------------------------------------------------------------------


def f1(x: float) -> str:
    return f"{x:,.1f}"


def f2(x: float) -> str:
    return f"{x:,.2f}"


def rng(r: tuple[float, float], fmt: Any = f1) -> str:
    return f"{fmt(r[0])} … {fmt(r[1])}"


def _vs(ours: float, anchor: float, anchor_ci: tuple[float, float], ok: bool) -> str:
    """``ours / anchor``, or — when either was not measured or the anchor adds nothing
    measurable (its confidence interval reaches zero)."""
    return _ratio(ours, anchor) if ok and anchor_ci[0] > 0 else "—"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "—"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _by(rows: Sequence[Row], config: str) -> Row | None:
    return next((r for r in rows if r.config == config), None)


def report(
    plan: Plan,
    tables: dict[str, list[Row]],
    rss: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    checks: dict[str, dict[str, Any]],
    paired: Paired,
) -> tuple[str, list[str]]:
    md: list[str] = []
    for kind in KINDS:
        rows = tables[kind]
        bare = _by(rows, "bare")
        assert bare is not None
        md += [f"### `{kind}` — unstreamed `chat` ({bare.n_calls} calls per config)", ""]
        body = []
        for r in rows:
            if r.status:
                body.append([LABELS[r.config], r.status, "", "", "", "", "", ""])
                continue
            body.append(
                [
                    LABELS[r.config],
                    f"{r.spans_per_call:.2f}",
                    f"{f1(r.call_cpu)} / {f1(r.call_cpu_p95)}",
                    f"{f1(r.call_wall)} / {f1(r.call_wall_p95)}",
                    "—" if r.config == "bare" else f"**{f1(r.added_call)}**",
                    "" if r.config == "bare" else rng(r.added_call_range),
                    "—"
                    if r.config == "bare"
                    else f"**{f1(r.added_proc_call)}** ({rng(r.added_proc_call_range)})",
                    _ratio(r.call_cpu, bare.call_cpu),
                ]
            )
        md += _table(
            [
                "config",
                "spans/call",
                "CPU µs median / p95",
                "wall µs median / p95",
                "added CPU µs/call",
                "added, 95% CI",
                "added whole-process CPU µs/call (95% CI)",
                "CPU vs bare",
            ],
            body,
        )
        md += [
            "",
            f"### `{kind}` — streamed `chat`, {plan.chunks} chunks "
            f"({bare.n_streams} streams per config)",
            "",
        ]
        body = []
        for r in rows:
            if r.stream_status:
                body.append([LABELS[r.config], r.stream_status] + [""] * 8)
                continue
            body.append(
                [
                    LABELS[r.config],
                    f"{r.stream_spans_per_call:.2f}",
                    f"{f1(r.stream_cpu)} / {f1(r.stream_cpu_p95)}",
                    f2(r.per_chunk),
                    "—"
                    if r.config == "bare"
                    else f"**{f2(r.added_chunk)}** ({rng(r.added_chunk_range, f2)})",
                    "—" if r.config == "bare" else f1(r.added_open),
                    "—"
                    if r.config == "bare"
                    else f"**{f1(r.added_end)}** ({rng(r.added_end_range)})",
                    "—" if r.config == "bare" else f1(r.added_stream),
                    "—"
                    if r.config == "bare"
                    else f"**{f1(r.added_proc_stream)}** ({rng(r.added_proc_stream_range)})",
                    _ratio(r.stream_cpu, bare.stream_cpu),
                ]
            )
        md += _table(
            [
                "config",
                "spans/stream",
                "CPU µs/stream median / p95",
                "CPU µs/chunk",
                "added µs/chunk (95% CI)",
                "added µs at open",
                "added µs at end of stream (95% CI)",
                "added µs/stream",
                "added whole-process µs/stream (95% CI)",
                "CPU vs bare",
            ],
            body,
        )
        md.append("")

    md += [
        "### otel_llm's added CPU as a fraction of each anchor's",
        "",
        "(< 1 means otel_llm adds less; — where the anchor adds nothing measurable; anchors "
        "that trace nothing for a client (n/a or BROKEN above) are left out)",
        "",
    ]
    body = []
    for kind in KINDS:
        rows = tables[kind]
        for ours in OURS:
            o = _by(rows, ours)
            if o is None or (o.status and o.stream_status):
                continue
            for anchor in ANCHORS:
                a = _by(rows, anchor)
                if a is None:
                    continue
                call_ok = not (o.status or a.status)
                stream_ok = not (o.stream_status or a.stream_status)
                if not (call_ok or stream_ok):
                    continue  # the anchor does not trace this client at all
                body.append(
                    [
                        f"`{kind}`",
                        LABELS[ours],
                        LABELS[anchor],
                        _vs(o.added_call, a.added_call, a.added_call_range, call_ok),
                        _vs(o.added_chunk, a.added_chunk, a.added_chunk_range, stream_ok),
                        _vs(o.added_end, a.added_end, a.added_end_range, stream_ok),
                        _vs(o.added_stream, a.added_stream, a.added_stream_range, stream_ok),
                    ]
                )
    md += _table(
        [
            "client",
            "ours",
            "vs anchor",
            "per call",
            "per chunk",
            "end of stream",
            "whole 200-chunk stream",
        ],
        body,
    )
    md.append("")

    md += frontends_table(tables)
    md += [
        "### Prompt size: added CPU per unstreamed call with a 1 KB, 100 KB and 1 MB prompt",
        "",
        "(calling thread µs, median over rounds, 95% CI; whole process in the next column; "
        f"{SIZED_BATCH['100k']} and {SIZED_BATCH['1m']} calls per batch for 100 KB and 1 MB)",
        "",
    ]
    body = []
    for kind in KINDS:
        for config in CONFIGS:
            found = [
                _by(tables.get(k, []), config) for k in (kind, *(f"{kind}@{z}" for z in SIZES))
            ]
            rows_by_size = [r for r in found if r is not None]
            if config == "bare" or len(rows_by_size) != len(found):
                continue
            cells_text = []
            for r in rows_by_size:
                if r.status:
                    cells_text += [r.status, ""]
                else:
                    cells_text += [
                        f"**{f1(r.added_call)}** ({rng(r.added_call_range)})",
                        f"{f1(r.added_proc_call)} ({rng(r.added_proc_call_range)})",
                    ]
            if all(
                c.startswith(("BROKEN", "not measured", "unavailable", "n/a")) or not c
                for c in cells_text
            ):
                continue
            body.append([f"`{kind}`", LABELS[config], *cells_text])
    md += _table(
        [
            "client",
            "config",
            "1 KB: thread",
            "1 KB: process",
            "100 KB: thread",
            "100 KB: process",
            "1 MB: thread",
            "1 MB: process",
        ],
        body,
    )
    md.append("")
    md += paired_table(paired, plan)

    md += [
        f"### Peak RSS over one {plan.rss_chunks:,}-chunk stream (`{RSS_KIND}`, a fresh "
        f"process per run, median of {plan.rss_reps})",
        "",
    ]
    body = []
    bare_g = rss.get("bare", {}).get("growth_kb")
    for config in CONFIGS:
        d = rss.get(config)
        if d is None:
            continue
        if "error" in d:
            body.append([LABELS[config], d["error"], "", "", "", ""])
            continue
        vs = "—" if config == "bare" or bare_g is None else f"{d['growth_kb'] - bare_g:+,.0f}"
        body.append(
            [
                LABELS[config],
                f"{d['before_kb']:,.0f}",
                f"{d['after_kb']:,.0f}",
                f"{d['growth_kb']:,.0f} ({', '.join(f'{g:,}' for g in d['growths_kb'])})",
                vs,
                f"{d['seconds']:.2f}",
            ]
        )
    md += _table(
        [
            "config",
            "ru_maxrss before KiB",
            "after KiB",
            "growth KiB (runs)",
            "growth vs bare KiB",
            "stream s",
        ],
        body,
    )
    md.append("")

    md += ["### Proof of work (totals over the run, per worker)", ""]
    body = []
    for config in CONFIGS:
        d = checks.get(config)
        if d is None:
            continue
        if "error" in d:
            body.append([LABELS[config], d["error"], "", ""])
            continue
        names = ", ".join(f"`{k}` x {v:,}" for k, v in sorted(d["span_names"].items()))
        body.append(
            [
                LABELS[config],
                f"{d['spans']:,}",
                names or "none",
                f"{d['metric_points']} points: " + ", ".join(d["metric_names"])
                if d["metric_points"]
                else "none",
            ]
        )
    md += _table(["config", "spans exported", "span names", "metrics collected"], body)
    md.append("")

    targets = evaluate_targets(tables, rss, paired, plan)
    return "\n".join(md), targets


def _minus(a: Sequence[float], b: Sequence[float], fmt: Any = f1) -> str:
    """Median and CI of round-by-round ``a - b`` (two cells measured in the same rounds);
    — when either cell was not measured (BROKEN: no rounds)."""
    if not a or not b:
        return "—"
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return f"{fmt(med(diffs))} ({rng(ci(diffs), fmt)})" if diffs else "—"


def frontends_table(tables: dict[str, list[Row]]) -> list[str]:
    """The same raw ``/api/chat`` call through requests and aiohttp beside raw httpx."""
    md = [
        "### Front-ends: the raw call through requests and aiohttp beside httpx",
        "",
        "(added µs, median over rounds with its 95% CI, as in the tables above; *minus httpx*: "
        "round by round, the front-end's added cost minus the same configuration's on raw "
        "httpx of the same kind (sync beside sync, async beside async), with its CI)",
        "",
    ]
    body = []
    for kind, base in FRONTENDS.items():
        for config in CONFIGS:
            if config == "bare":
                continue  # bare-2 stays: the A/A row is the noise floor of "minus httpx" too
            f, h = _by(tables[kind], config), _by(tables[base], config)
            if f is None or h is None:
                continue
            call_status = f.status or (h.status and f"`{base}`: {h.status}")
            stream_status = f.stream_status or (h.stream_status and f"`{base}`: {h.stream_status}")
            if call_status and stream_status:
                continue  # this configuration does not trace the front-end (or httpx)
            call_cells = (
                [call_status, "", "", ""]
                if call_status
                else [
                    f"{f1(h.added_call)} ({rng(h.added_call_range)})",
                    f"**{f1(f.added_call)}** ({rng(f.added_call_range)})",
                    _minus(f.call_rounds, h.call_rounds),
                    f"{f1(f.added_proc_call)} ({rng(f.added_proc_call_range)})",
                ]
            )
            stream_cells = (
                [stream_status, "", "", ""]
                if stream_status
                else [
                    f"{f2(h.added_chunk)} / **{f2(f.added_chunk)}**",
                    _minus(f.chunk_rounds, h.chunk_rounds, f2),
                    f"{f1(h.added_end)} / **{f1(f.added_end)}**",
                    _minus(f.end_rounds, h.end_rounds),
                ]
            )
            body.append([f"`{kind}`", LABELS[config], *call_cells, *stream_cells])
    md += _table(
        [
            "front-end",
            "config",
            "httpx: added µs/call",
            "front-end: added µs/call",
            "minus httpx µs/call",
            "front-end: added whole-process µs/call",
            "added µs/chunk httpx / front-end",
            "minus httpx µs/chunk",
            "added µs at end of stream httpx / front-end",
            "minus httpx µs at end",
        ],
        body,
    )
    md.append("")
    return md


def evaluate_targets(
    tables: dict[str, list[Row]], rss: dict[str, dict[str, Any]], paired: Paired, plan: Plan
) -> list[str]:
    lines: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    for kind, yardstick in TARGET_KINDS.items():
        o, a = _by(tables[kind], "otel_llm"), _by(tables[yardstick], "openllmetry")
        ok: bool | None
        if o is None or a is None:
            lines.append(f"n/a   [{kind}] otel_llm and OpenLLMetry were not both in this run")
            continue
        label = kind if yardstick == kind else f"{kind} vs OpenLLMetry on {yardstick}"
        if o.status or a.status:
            ok, detail = None, f"otel_llm: {o.status or 'ok'}; OpenLLMetry: {a.status or 'ok'}"
        else:
            ok = o.added_call <= 0.5 * a.added_call
            detail = (
                f"{f1(o.added_call)} µs vs OpenLLMetry {f1(a.added_call)} µs "
                f"(limit {f1(0.5 * a.added_call)})"
            )
        lines.append(
            f"{verdict(ok)}  [{label}] added CPU per unstreamed call ≤ 0.5x OpenLLMetry's: {detail}"
        )
        if o.stream_status:
            ok, detail = None, o.stream_status
        else:
            ok = o.added_chunk <= 0.5
            detail = f"{f2(o.added_chunk)} µs (95% CI {rng(o.added_chunk_range, f2)})"
        lines.append(f"{verdict(ok)}  [{label}] added CPU per streamed chunk ≤ 0.5 µs: {detail}")
        if o.stream_status or a.stream_status:
            ok = None
            detail = f"otel_llm: {o.stream_status or 'ok'}; OpenLLMetry: {a.stream_status or 'ok'}"
        else:
            ok = o.added_end <= 0.5 * a.added_end
            detail = (
                f"{f1(o.added_end)} µs vs OpenLLMetry {f1(a.added_end)} µs "
                f"(limit {f1(0.5 * a.added_end)})"
            )
        lines.append(
            f"{verdict(ok)}  [{label}] added CPU at end of stream ≤ 0.5x OpenLLMetry's: {detail}"
        )
        for what, limit, mine, theirs, broken in (
            (
                "per unstreamed call",
                1.0,
                o.added_proc_call,
                a.added_proc_call,
                o.status or a.status,
            ),
            (
                f"per {PLAN_CHUNKS}-chunk stream",
                0.5,
                o.added_proc_stream,
                a.added_proc_stream,
                o.stream_status or a.stream_status,
            ),
        ):
            if broken:
                ok, detail = None, broken
            else:
                ok = mine <= limit * theirs
                detail = (
                    f"{f1(mine)} µs vs OpenLLMetry {f1(theirs)} µs (limit {f1(limit * theirs)})"
                )
            lines.append(
                f"{verdict(ok)}  [{label}] added whole-process CPU {what} ≤ {limit:.1f}x "
                f"OpenLLMetry's: {detail}"
            )
    for kind in PAIRED_KINDS:
        sizes = paired.get(("otel_llm", kind), [])
        spread = _spread(sizes) if sizes else None
        ok = None if spread is None else spread <= FLAT
        if ok is None:
            detail = "not measured in this run"
        else:
            figures = " / ".join(f1(z[0]) for z in sizes if z is not None)
            detail = f"{figures} µs at 1 KB / 100 KB / 1 MB (limit ±{FLAT:.0%} of 1 KB)"
        spacing = (
            f"calls {1000 * plan.pair_period:.0f} ms apart" if plan.pair_period else "back to back"
        )
        lines.append(
            f"{verdict(ok)}  [{kind}] added CPU per unstreamed call flat from 1 KB to 1 MB "
            f"prompts (paired in one process, {spacing}): {detail}"
        )
    ours, bare = rss.get("otel_llm", {}), rss.get("bare", {})
    if "growth_kb" in ours and "growth_kb" in bare:
        diff = ours["growth_kb"] - bare["growth_kb"]
        ok = diff <= RSS_TARGET_KB
        detail = f"{diff:+,.0f} KiB vs bare (limit +{RSS_TARGET_KB} KiB)"
    else:
        ok, detail = None, ours.get("error") or bare.get("error") or "not measured"
    lines.append(
        f"{verdict(ok)}  [{RSS_KIND}] peak RSS growth over the 50,000-chunk "
        f"stream within 0.5 MiB of bare: {detail}"
    )
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "otel_llm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        when = dt.datetime.now(dt.timezone.utc).strftime("%H:%M UTC")
        return rev + (f" + uncommitted changes in otel_llm/ (work tree at {when})" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _load1(text: str) -> float:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return 0.0


def measure_proxy(quick: bool, log: Any) -> dict[str, Any]:
    """``bench/proxy.py`` in bench/.venv: the mock, the proxy as shipped and a load generator
    in their own processes (the rounds above are over, so they have the machine)."""
    log("proxy: bench/proxy.py (mock, proxy and load generator as separate processes)")
    OUT.mkdir(exist_ok=True)
    out = OUT / "proxy.json"
    out.unlink(missing_ok=True)
    cmd = [str(VPY), str(BENCH / "proxy.py"), "--json", str(out)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        log(f"proxy: failed: {why}")
        return {"error": why[:300]}
    return {"servers": json.loads(out.read_text())}


def _proxy_module() -> Any:
    """``bench/proxy.py``, for its report table (stdlib at import, like this file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_proxy_bench", BENCH / "proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def proxy_section(proxy: dict[str, Any]) -> str:
    lines = [
        "### The sidecar proxy (`bench/proxy.py`)",
        "",
        "The mock Ollama, `otel-llm proxy` as shipped (uvicorn, access log on, spans over "
        "OTLP/HTTP to a local sink) and a minimal asyncio load generator, each its own "
        "process on this machine, after the rounds above; each request is sent through "
        "the proxy and straight to the mock in interleaved rounds.",
        "",
    ]
    if "error" in proxy:
        return "\n".join([*lines, f"unavailable: {proxy['error']}"])
    module = _proxy_module()
    for name, result in proxy["servers"].items():
        lines.append(module.report(f"proxy on {name}", result).replace("### ", "#### ", 1))
    return "\n".join(lines)


def proxy_targets(proxy: dict[str, Any]) -> list[str]:
    if "error" in proxy:
        return [f"n/a   [proxy] added p50 and time to first chunk: {proxy['error']}"]
    result = next(iter(proxy["servers"].values()))  # the server the proxy ships with
    lines = []
    for key, what in (("unary", "added p50 latency"), ("ttft", "added p50 time to first chunk")):
        added = result[key]["proxy"]["added_p50"] * 1000
        verdict = "PASS" if added <= PROXY_TARGET_MS else "FAIL"
        lines.append(
            f"{verdict}  [proxy] {what} ≤ {PROXY_TARGET_MS:g} ms: {added:.3f} ms "
            f"(IQR of rounds {result[key]['proxy']['added_p50_q1'] * 1000:.3f} … "
            f"{result[key]['proxy']['added_p50_q3'] * 1000:.3f})"
        )
    return lines


def write_results(
    plan: Plan, quick: bool, body: str, targets: list[str], meta: dict[str, Any]
) -> str:
    versions = meta.get("versions", {})
    lines = [
        "# Benchmark results: the CPU cost of tracing an Ollama call",
        "",
        "Written by `make bench` (`bench/run.py`); method in [README.md](README.md). "
        "CPU is `time.thread_time()` of the calling thread (the event loop's for async), "
        "in µs. *Added* is the median over rounds of (the configuration's median in "
        "that round minus bare's); beside it, a ~95 % confidence interval of that median "
        "(order statistics over the rounds). The A/A row (a second bare worker) shows the "
        "method's noise floor.",
        "",
        f"- date: {meta['date']}",
        f"- mode: {'QUICK (smoke run, numbers not for quoting)' if quick else 'full'}; "
        f"{meta['rounds']} interleaved rounds; {meta['calls']} unstreamed calls and "
        f"{meta['streams']} {plan.chunks}-chunk streams per config per client; "
        f"run time {meta['seconds']:.0f} s",
        f"- machine: {meta['cpu']}, {meta['ncpu']} CPUs; server pinned to CPU "
        f"{meta['server_cpu']}, workers to CPU {meta['worker_cpu']}; "
        f"1-minute load average {_load1(meta['load_start']):.2f} at start, "
        f"{meta.get('load_max', 0):.2f} at most during the rounds, "
        f"{_load1(meta['load_end']):.2f} at end (our own server + worker make ~1)",
        f"- Python {meta['python']} ({meta['implementation']}), {platform.system()} "
        f"{platform.release()}",
        f"- otel_llm at {meta['git']}",
        "- packages (bench/.venv): " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    if _load1(meta["load_start"]) > BUSY_LOAD or meta.get("load_max", 0) > BUSY_LOAD + 1:
        lines.append(
            f"- **the machine was busy** (1-minute load {_load1(meta['load_start']):.2f} at "
            f"start, up to {meta.get('load_max', 0):.2f} during the rounds, ~1 of it ours): "
            "other processes inflate CPU times, the added costs more than the bare work"
        )
    for config, why in meta.get("unavailable", {}).items():
        lines.append(f"- {LABELS[config]}: unavailable: {why}")
    lines += [
        "",
        "## Targets (otel_llm spans + metrics: official `ollama` client, requests, aiohttp;"
        " the sidecar proxy)",
        "",
        "```",
    ]
    lines += targets
    lines += ["```", "", "## Tables", "", body]
    text = "\n".join(lines).rstrip() + "\n"
    RESULTS.write_text(text)
    return text


# --- the profile --------------------------------------------------------------------------


def profile(url: str, cpu: int | None, n: int, log: Any) -> None:
    """py-spy over otel_llm's ``ollama``-client calls: where the added time goes.

    Two recordings: N unstreamed calls, then N/25 streams of 200 chunks. A sample counts
    as instrumentation when, walking from the leaf up, the first frame that is not the
    standard library or a builtin belongs to ``otel_llm`` or ``opentelemetry``; µs per
    call scale the sample shares by the measured median CPU per call.
    """
    OUT.mkdir(exist_ok=True)
    spy_bin = VENV / "bin" / "py-spy"
    if not spy_bin.exists():
        sys.exit("bench: py-spy is not installed in bench/.venv")
    texts = []
    worker = Worker("otel_llm", url, cpu)
    try:
        if worker.error:
            sys.exit(f"bench: otel_llm worker: {worker.error}")
        for mode, count in (("call", n), ("stream", max(40, n // 25))):
            raw_path = OUT / f"profile-otel_llm-{mode}.raw"
            raw_path.unlink(missing_ok=True)
            worker.ask(cmd="batch", kind="ollama-sync", mode=mode, n=max(10, count // 10))
            log(f"profiling {count} ollama-client {mode}s with otel_llm (py-spy, 1 kHz) ...")
            spy = subprocess.Popen(
                [str(spy_bin), "record", "--pid", str(worker.proc.pid), "--rate", "1000",
                 "--format", "raw", "--full-filenames", "--output", str(raw_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            time.sleep(1.0)  # let py-spy attach
            reply = worker.ask(timeout=900, cmd="batch", kind="ollama-sync", mode=mode, n=count)
            spy.send_signal(signal.SIGINT)
            _, err = spy.communicate(timeout=60)
            if not reply.get("ok") or not raw_path.exists():
                sys.exit(f"bench: profile failed: {reply.get('error')} {err.strip()[-300:]}")
            unit = "unstreamed call" if mode == "call" else f"{PLAN_CHUNKS}-chunk stream"
            texts.append(
                summarise_profile(raw_path.read_text(), med(reply["cpu"]) * US, count, unit)
                + f"\nraw stacks: {raw_path.relative_to(ROOT)}"
            )
    finally:
        worker.close()
    text = "\n\n".join(texts)
    (OUT / "profile-summary.txt").write_text(text + "\n")
    print(text)


def _frame_owner(frame: str) -> str:
    where = frame[frame.rfind("(") + 1 :]
    if "/site-packages/opentelemetry/" in where or where.startswith(str(ROOT / "otel_llm")):
        return "ours"
    if "/site-packages/" in where or where.startswith(str(BENCH)):
        return "theirs"
    return "neutral"  # the standard library, builtins


def _short(frame: str) -> str:
    """``func (path)`` with the path from its package down."""
    where = frame[frame.rfind("(") + 1 :]
    for prefix in ("/site-packages/", f"{ROOT}/", "/lib/python3"):
        at = where.find(prefix)
        if at >= 0:
            rest = where[at + len(prefix) :]
            if prefix == "/lib/python3":
                rest = rest.split("/", 1)[-1]  # drop "11/" of "/lib/python3.11/"
            return frame[: frame.rfind("(") + 1] + rest
    return frame


def summarise_profile(raw: str, cpu_per_call: float, n: int, unit: str) -> str:
    total = ours_total = 0
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack_text.split(";")]
        total += count
        owner = "neutral"
        for frame in reversed(frames):
            owner = _frame_owner(frame)
            if owner != "neutral":
                break
        if owner != "ours":
            continue
        ours_total += count
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + count
        for frame in set(frames):
            if _frame_owner(frame) == "ours":
                inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return "profile: no samples"

    def us(count: int) -> str:
        return f"{count / total * cpu_per_call:7.1f} µs {100 * count / total:5.1f}%"

    lines = [
        f"profile: {n} x {unit} (ollama client, sync), otel_llm spans + metrics, "
        f"{total} on-CPU samples; median CPU {cpu_per_call:.0f} µs per {unit}.",
        f"instrumentation (otel_llm + opentelemetry SDK, incl. the stdlib they call): "
        f"{us(ours_total)} of it",
        "",
        f"inclusive, within instrumentation samples (µs per {unit}, % of it):",
    ]
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:30]:
        lines.append(f"  {us(count)}  {_short(frame)}")
    lines += ["", "leaf frames of instrumentation samples (self time):"]
    for frame, count in sorted(leaf.items(), key=lambda kv: -kv[1])[:20]:
        lines.append(f"  {us(count)}  {_short(frame)}")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile otel_llm's unstreamed ollama-client call",
    )
    parser.add_argument("--profile-calls", type=int, default=5000)
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma-separated subset (bare is always included)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    parser.add_argument(
        "--no-proxy", action="store_true", help="skip the sidecar proxy's table (bench/proxy.py)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="a directory with another otel_llm package (e.g. `git archive REV otel_llm | "
        "tar -x -C DIR`), measured as the otel_llm-baseline configuration in the same run",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="seconds for the interleaved rounds; on a slow or busy machine the run stops "
        "after the round that would overrun it (default 600)",
    )
    parser.add_argument(
        "--report-from",
        metavar="RAW_JSON",
        help="rebuild the tables and RESULTS.md from a run's bench/out/raw.json; no measuring",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        render(json.loads(Path(args.report_from).read_text()), write=not args.no_results)
        return 0
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    if args.baseline:
        _baseline.append(str(Path(args.baseline).resolve()))

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", flush=True)

    failed = ensure_venv()
    unavailable: dict[str, str] = {}
    for config, req_name in NEEDS.items():
        for req, why in failed.items():
            if req.split("=")[0].split("<")[0].split(">")[0].strip() == req_name:
                unavailable[config] = f"pip could not install {req}: {why}"
    server_cpu, worker_cpu = _cpus()
    load_start = loadavg()
    measured_rev = git_rev()  # the workers import otel_llm from the work tree as it is now
    server = Server(plan, server_cpu)
    workers: dict[str, Worker] = {}
    try:
        if args.profile:
            profile(server.url, worker_cpu, args.profile_calls, log)
            return 0
        log(f"mock Ollama at {server.url}; load average {load_start}")
        if _load1(load_start) > BUSY_LOAD:
            log(
                f"WARNING: the machine is busy (load {load_start}): other processes inflate "
                "CPU times and widen the noise; a quiet machine gives cleaner numbers"
            )
        wanted = ["bare"] + [c for c in args.configs.split(",") if c in CONFIGS and c != "bare"]
        for config in wanted:
            if config in unavailable:
                continue
            worker = Worker(config, server.url, worker_cpu)
            if worker.error:
                unavailable[config] = worker.error
                worker.close()
                log(f"{config}: unavailable: {worker.error}")
            else:
                workers[config] = worker
        if "bare" not in workers:
            sys.exit(f"bench: the bare worker failed: {unavailable.get('bare')}")
        loads: list[float] = [_load1(load_start)]
        cells = measure(plan, workers, log, args.budget, loads)
        checks: dict[str, dict[str, Any]] = {}
        for config, worker in workers.items():
            rep = worker.ask(cmd="report")
            checks[config] = rep if rep.get("ok") else {"error": str(rep.get("error"))}
        for worker in workers.values():
            worker.close()
        workers.clear()
        log(f"peak RSS: a fresh worker per config, one {plan.rss_chunks:,}-chunk stream each")
        rss_configs = [c for c in wanted if c not in unavailable]
        rss = measure_rss(plan, server.url, rss_configs, worker_cpu, log)
    finally:
        for worker in workers.values():
            worker.close()
        server.stop()
    for config in unavailable:
        rss.setdefault(config, {"error": f"unavailable: {unavailable[config]}"})
    proxy = None if args.no_proxy else measure_proxy(args.quick, log)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "ncpu": os.cpu_count(),
        "server_cpu": server_cpu,
        "worker_cpu": worker_cpu,
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "git": measured_rev,
        "unavailable": unavailable,
        "load_start": load_start,
        "load_end": loadavg(),
        "load_max": max(loads),
        "seconds": time.perf_counter() - started,
        "quick": args.quick,
        "configs": [c for c in CONFIGS if c in wanted],
    }
    raw = {
        "meta": meta,
        "plan": plan.__dict__,
        "cells": {
            "|".join(k): {
                "rounds": v.rounds,
                "spans": v.spans,
                "calls": v.calls,
                "parts": v.parts,
                "broken": v.broken,
            }
            for k, v in cells.items()
        },
        "rss": rss,
        "checks": checks,
        "proxy": proxy,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "raw.json").write_text(json.dumps(raw))
    render(raw, write=not args.no_results)
    return 0


def render(raw: dict[str, Any], write: bool) -> None:
    """Tables, targets and RESULTS.md from a run's raw data (``bench/out/raw.json``)."""
    meta, rss, checks = raw["meta"], raw["rss"], raw["checks"]
    plan = Plan(**raw["plan"])
    cells: dict[tuple[str, str, str], Cell] = {}
    for key, d in raw["cells"].items():
        cell = Cell(spans=d["spans"], calls=d["calls"], parts=d["parts"], broken=d["broken"])
        for batch in d["rounds"]:
            cell.rounds.append(batch)
            for k, v in batch.items():
                cell.samples.setdefault(k, []).extend(v)
        config, kind, mode = key.split("|")
        cells[config, kind, mode] = cell
    shown = meta["configs"]
    unavailable = meta["unavailable"]
    tables = summarise(cells, shown, unavailable)
    for kind in tables:
        tables[kind] = [r for r in tables[kind] if r.config in shown]
    bare_check = checks.get("bare", {})
    bare_row = _by(tables["ollama-sync"], "bare")
    assert bare_row is not None
    meta = {
        **meta,
        "python": bare_check.get("python", "unknown"),
        "versions": bare_check.get("versions", {}),
        "rounds": bare_row.rounds,
        "calls": bare_row.n_calls,
        "streams": bare_row.n_streams,
    }
    body, targets = report(plan, tables, rss, meta, checks, summarise_paired(cells))
    proxy = raw.get("proxy")
    if proxy is not None:
        body = body.rstrip() + "\n\n" + proxy_section(proxy) + "\n"
        targets = targets + proxy_targets(proxy)
    print()
    print(body)
    print("Targets (otel_llm spans + metrics: official ollama client, requests, aiohttp; proxy):")
    for line in targets:
        print("  " + line)
    if write:
        write_results(plan, meta["quick"], body, targets, meta)
        print(f"\nwrote {RESULTS.relative_to(ROOT)} (run took {meta['seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
