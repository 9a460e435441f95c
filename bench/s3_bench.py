"""The S3 benchmark of issue 3: the same boto3 workload against zeronode, moto and a do-nothing
endpoint, with the server's own CPU and memory read from /proc.

    python bench/s3_bench.py [--quick] [--targets zeronode,moto,null] [--client both]
                             [--json out.json]

Each target runs in its own subprocess on 127.0.0.1 (see servers.py) and is measured in turn:
4 KiB PutObject and GetObject at concurrency 1 and 8, one big object PUT and GET (with boto3,
and with the lean client of raw_client.py: the server's ceiling), the creation of many keys and the time to list them all with ListObjectsV2. A target that does not start, or
an operation it does not support, is reported as such; the run goes on. The exit status is 0
unless the harness itself broke: the PASS/FAIL lines are measurements, not a test. See
bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import procstat
import raw_client
import servers
from botocore.config import Config
from botocore.exceptions import ClientError
from servers import Server, ServerError

MiB = 1 << 20
GiB = 1 << 30
SMALL_SIZE = 4096
BUCKET = "zeronode-bench"
BIG_KEY = "big/object"
RAW_BIG_KEY = "big/object-raw"
BIG_CLIENTS = ("boto3", "raw")
LIST_PREFIX = "list/"
CONCURRENCIES = (1, 8)
CREATE_CONCURRENCY = 16
GIVE_UP_AFTER = 100  # failed calls, with no success at all, before a phase is abandoned
TRANSFER_POOL = 16  # s3transfer runs 10 threads by default
TARGETS = ("zeronode", "moto", "null")
FULL = {"ops": 2000, "big_mib": 1024, "keys": 100_000}
QUICK = {"ops": 200, "big_mib": 64, "keys": 2000}

Op = Callable[[Any, int], None]


# --- results ---------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """One measured phase. ``ops`` counts successes; failed requests are in ``errors``."""

    key: str  # stable id used by the ratios and checks: put_small_c1, get_big, list, ...
    name: str
    ops: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    bytes: int = 0
    peak_rss_bytes: int | None = None
    per_op: bool = True  # False for one big transfer or one listing: no per-op figures
    abandoned: bool = False  # stopped early: about GIVE_UP_AFTER failures, no success

    @property
    def attempts(self) -> int:
        return self.ops + sum(self.errors.values())

    @property
    def ops_per_s(self) -> float | None:
        return self.ops / self.seconds if self.per_op and self.ops and self.seconds else None

    @property
    def server_ms_per_op(self) -> float | None:
        return 1000 * self.server_cpu_s / self.attempts if self.per_op and self.attempts else None

    @property
    def client_ms_per_op(self) -> float | None:
        return 1000 * self.client_cpu_s / self.attempts if self.per_op and self.attempts else None

    @property
    def mib_per_s(self) -> float | None:
        return self.bytes / MiB / self.seconds if self.bytes and self.ops and self.seconds else None

    def record_error(self, exc: Exception) -> None:
        label = error_label(exc)
        self.errors[label] = self.errors.get(label, 0) + 1
        self.first_error = self.first_error or f"{label}: {exc}"

    def to_json(self) -> dict[str, Any]:
        derived = ("ops_per_s", "server_ms_per_op", "client_ms_per_op", "mib_per_s")
        return {**asdict(self), **{name: getattr(self, name) for name in derived}}


@dataclass
class TargetResult:
    name: str
    endpoint: str | None = None
    pid: int | None = None
    startup_s: float | None = None
    load_average: float | None = None  # 1-minute load when the target started: is the box busy?
    failure: str | None = None  # the target could not be measured (from that point on)
    phases: list[PhaseResult] = field(default_factory=list)
    log_tail: str | None = None

    def phase(self, key: str) -> PhaseResult | None:
        return next((phase for phase in self.phases if phase.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "phases": [phase.to_json() for phase in self.phases]}


class CheckFailed(Exception):
    """A response that looked fine but was wrong (short download, missing keys)."""


def error_label(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "?")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{code} (HTTP {status})"
    return type(exc).__name__


# --- measuring -------------------------------------------------------------------------------


class Meter:
    """Wall time, server CPU (its process tree, from /proc) and this process's CPU."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = (0.0, 0.0, 0.0)
        self._stop = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        return time.perf_counter(), procstat.cpu_seconds(self.pid), time.process_time()

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        self._stop = self._now()

    def fill(self, result: PhaseResult) -> None:
        result.seconds, result.server_cpu_s, result.client_cpu_s = (
            end - begin for end, begin in zip(self._stop, self._start)
        )


@functools.cache
def session() -> boto3.session.Session:
    """One session for every client (it caches the service model: a client then costs ~10 ms,
    not ~150 ms). Clients are made in the main thread; each thread then uses its own."""
    return boto3.session.Session()


def make_client(server: Server, pool: int) -> Any:
    """Path-style, SigV4, one attempt per call (no retry), boto3's default checksums."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": 1},  # no retry
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=60,
    )
    return session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=config,
    )


@contextlib.contextmanager
def open_clients(server: Server, count: int, pool: int) -> Iterator[list[Any]]:
    """``count`` clients, closed afterwards: an idle keep-alive connection left open would make
    a server's graceful stop wait for it."""
    clients = [make_client(server, pool) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def run_ops(server: Server, result: PhaseResult, clients: list[Any], op: Op, total: int) -> None:
    """``op(client, i)`` for i in range(total), spread over one thread per client.

    Every thread first opens its connection, then all start together; the meter runs from
    that moment until the last thread is done. A phase that only ever fails is abandoned early
    (an operation the target does not have would otherwise take as long as a real run).
    """
    meter = Meter(server.pid)
    worker = Worker(
        op=op,
        barrier=threading.Barrier(len(clients), action=meter.start),
        stop=threading.Event(),
        give_up_after=math.ceil(GIVE_UP_AFTER / len(clients)),
    )
    shares = [PhaseResult(result.key, result.name) for _ in clients]
    latencies: list[list[float]] = [[] for _ in clients]
    threads = [
        threading.Thread(
            target=worker.run,
            args=(client, range(n, total, len(clients)), shares[n], latencies[n]),
            daemon=True,
        )
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        worker.stop.set()  # on Ctrl-C or SIGTERM too: the workers end after their current call
    meter.stop()
    meter.fill(result)
    for share in shares:
        result.ops += share.ops
        result.errors = dict(Counter(result.errors) + Counter(share.errors))
        result.first_error = result.first_error or share.first_error
        result.abandoned = result.abandoned or share.abandoned
    result.p50_ms, result.p99_ms = percentiles_ms(sorted(itertools.chain.from_iterable(latencies)))


@dataclass
class Worker:
    """The loop each thread of :func:`run_ops` runs, and what the threads share."""

    op: Op
    barrier: threading.Barrier
    stop: threading.Event
    give_up_after: int  # failures of one thread without a success of its own: phase over

    def run(self, client: Any, indexes: range, share: PhaseResult, latencies: list[float]) -> None:
        # Opens the connection before the clock starts; whatever fails shows again in the phase.
        with contextlib.suppress(Exception):
            client.head_bucket(Bucket=BUCKET)
        self.barrier.wait()
        for index in indexes:
            if self.stop.is_set():
                return
            started = time.perf_counter()
            try:
                self.op(client, index)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never retried
                share.record_error(exc)
                if share.ops == 0 and sum(share.errors.values()) >= self.give_up_after:
                    share.abandoned = True
                    self.stop.set()
                continue
            latencies.append(time.perf_counter() - started)
            share.ops += 1


def percentiles_ms(latencies: Sequence[float]) -> tuple[float | None, float | None]:
    """p50 and p99 (nearest rank) of sorted latencies in seconds, in milliseconds."""
    if not latencies:
        return None, None

    def rank(q: float) -> float:
        return 1000 * latencies[max(0, math.ceil(q * len(latencies)) - 1)]

    return rank(0.50), rank(0.99)


def run_once(server: Server, result: PhaseResult, action: Callable[[], int]) -> None:
    """Time one ``action`` (returning how many operations it did), sampling the server's RSS."""
    result.per_op = False
    meter = Meter(server.pid)
    with procstat.RssSampler(server.pid) as rss:
        meter.start()
        try:
            result.ops = action()
        except Exception as exc:  # noqa: BLE001 - reported as the phase's error
            result.record_error(exc)
        meter.stop()
    meter.fill(result)
    result.peak_rss_bytes = rss.peak


# --- the phases ------------------------------------------------------------------------------

Phase = Callable[[Server, PhaseResult], None]


def small_key(concurrency: int, index: int) -> str:
    return f"small/c{concurrency}/{index:07d}"


def put_small(concurrency: int, ops: int, server: Server, result: PhaseResult) -> None:
    payload = os.urandom(SMALL_SIZE)

    def op(client: Any, index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=small_key(concurrency, index), Body=payload)

    with open_clients(server, concurrency, pool=2) as clients:
        run_ops(server, result, clients, op, ops)


def get_small(concurrency: int, ops: int, server: Server, result: PhaseResult) -> None:
    """Reads back the keys the PUT phase of the same concurrency wrote."""

    def op(client: Any, index: int) -> None:
        body = client.get_object(Bucket=BUCKET, Key=small_key(concurrency, index))["Body"].read()
        if len(body) != SMALL_SIZE:
            raise CheckFailed(f"got {len(body)} bytes, expected {SMALL_SIZE}")

    with open_clients(server, concurrency, pool=2) as clients:
        run_ops(server, result, clients, op, ops)


def put_big(source: Path, server: Server, result: PhaseResult) -> None:
    result.bytes = source.stat().st_size
    with open_clients(server, 1, pool=TRANSFER_POOL) as [client]:

        def upload() -> int:
            client.upload_file(str(source), BUCKET, BIG_KEY)
            return 1

        run_once(server, result, upload)


def put_big_raw(source: Path, server: Server, result: PhaseResult) -> None:
    result.bytes = source.stat().st_size
    with open_clients(server, 1, pool=TRANSFER_POOL) as [client]:

        def upload() -> int:
            raw_client.upload(client, server.endpoint, BUCKET, RAW_BIG_KEY, source)
            return 1

        run_once(server, result, upload)


def get_big_raw(size: int, server: Server, result: PhaseResult) -> None:
    result.bytes = size
    with open_clients(server, 1, pool=TRANSFER_POOL) as [client]:

        def download() -> int:
            received = raw_client.download(client, server.endpoint, BUCKET, RAW_BIG_KEY)
            if received != size:
                raise CheckFailed(f"downloaded {received} bytes, expected {size}")
            return 1

        run_once(server, result, download)


class CountingSink:
    """A seekable file object that discards what is written and counts it (a /dev/null that
    s3transfer may write to in parallel): the GET measures the server, not the client's disk."""

    def __init__(self) -> None:
        self.written = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            self.written += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return offset

    def tell(self) -> int:
        return 0

    def seekable(self) -> bool:
        return True


def get_big(size: int, server: Server, result: PhaseResult) -> None:
    result.bytes = size
    with open_clients(server, 1, pool=TRANSFER_POOL) as [client]:

        def download() -> int:
            sink = CountingSink()
            client.download_fileobj(BUCKET, BIG_KEY, sink)
            if sink.written != size:
                raise CheckFailed(f"downloaded {sink.written} bytes, expected {size}")
            return 1

        run_once(server, result, download)


def create_keys(count: int, server: Server, result: PhaseResult) -> None:
    def op(client: Any, index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{LIST_PREFIX}{index:07d}", Body=b"")

    with open_clients(server, CREATE_CONCURRENCY, pool=2) as clients:
        run_ops(server, result, clients, op, count)


def list_keys(count: int, server: Server, result: PhaseResult) -> None:
    """Lists every key under the prefix, page by page (1,000 keys a page); ``ops`` = pages."""
    with open_clients(server, 1, pool=2) as [client]:

        def list_all() -> int:
            pages = listed = 0
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=BUCKET, Prefix=LIST_PREFIX):
                pages += 1
                listed += len(page.get("Contents", []))
            if listed != count:
                raise CheckFailed(f"listed {listed} keys in {pages} pages, expected {count}")
            return pages

        run_once(server, result, list_all)


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    small_ops: int
    big_bytes: int
    list_keys: int
    quick: bool
    big_clients: tuple[str, ...] = BIG_CLIENTS  # who moves the big object: boto3, raw or both


def size_label(size: int) -> str:
    return f"{size // GiB}GiB" if size % GiB == 0 else f"{size // MiB}MiB"


def plan(workload: Workload, big_file: Path) -> list[tuple[str, str, Phase]]:
    """(key, name, phase) in the order they run; GETs read what the PUT before them wrote."""
    steps: list[tuple[str, str, Phase]] = []
    for c in CONCURRENCIES:
        steps.append(
            (f"put_small_c{c}", f"PUT 4KiB c{c}", partial(put_small, c, workload.small_ops))
        )
        steps.append(
            (f"get_small_c{c}", f"GET 4KiB c{c}", partial(get_small, c, workload.small_ops))
        )
    big, keys = size_label(workload.big_bytes), workload.list_keys
    if "boto3" in workload.big_clients:
        steps += [
            ("put_big", f"PUT {big}", partial(put_big, big_file)),
            ("get_big", f"GET {big}", partial(get_big, workload.big_bytes)),
        ]
    if "raw" in workload.big_clients:
        steps += [
            ("put_big_raw", f"PUT {big} raw", partial(put_big_raw, big_file)),
            ("get_big_raw", f"GET {big} raw", partial(get_big_raw, workload.big_bytes)),
        ]
    steps += [
        ("create_keys", f"create {keys} keys c{CREATE_CONCURRENCY}", partial(create_keys, keys)),
        ("list", f"LIST {keys} keys", partial(list_keys, keys)),
    ]
    return steps


def run_target(name: str, workload: Workload, workdir: Path, big_file: Path) -> TargetResult:
    result = TargetResult(name)
    progress(f"{name}: starting")
    result.load_average = os.getloadavg()[0]
    started = time.monotonic()
    try:
        server = servers.start(name, workdir / name)
    except ServerError as exc:
        result.failure = f"could not start: {exc}"
        progress(f"{name}: {result.failure}")
        return result
    result.endpoint, result.pid = server.endpoint, server.pid
    result.startup_s = time.monotonic() - started
    try:
        run_phases(server, workload, big_file, result)
    finally:
        server.stop()
    if result.failure or any(phase.errors for phase in result.phases):
        result.log_tail = server.log_tail(lines=8)
    return result


def run_phases(server: Server, workload: Workload, big_file: Path, result: TargetResult) -> None:
    try:
        with open_clients(server, 1, pool=1) as [client]:
            client.create_bucket(Bucket=BUCKET)
    except Exception as exc:  # noqa: BLE001 - nothing else can run; reported
        result.failure = f"CreateBucket failed: {error_label(exc)}: {exc}"
        progress(f"{result.name}: {result.failure}")
        return
    for key, name, phase in plan(workload, big_file):
        if server.exit_status is not None:
            result.failure = f"server exited with status {server.exit_status} before {name}"
            progress(f"{result.name}: {result.failure}")
            return
        phase_result = PhaseResult(key, name)
        phase(server, phase_result)
        result.phases.append(phase_result)
        progress(f"{result.name}: {summary_line(phase_result)}")


def summary_line(phase: PhaseResult) -> str:
    errors = sum(phase.errors.values())
    parts = [f"{phase.name}: {phase.ops} ok, {errors} errors in {phase.seconds:.2f} s"]
    if phase.abandoned:
        parts.append("abandoned: every call failed")
    if errors:
        parts.append(f"first error: {phase.first_error}")
    return "; ".join(parts)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def write_big_file(path: Path, size: int) -> None:
    """``size`` bytes: one random MiB repeated (content does not matter to S3, only its length)."""
    block = os.urandom(MiB)
    with path.open("wb") as file:
        for offset in range(0, size, MiB):
            file.write(block[: min(MiB, size - offset)])


def run(targets: Sequence[str], workload: Workload) -> list[TargetResult]:
    workdir = Path(tempfile.mkdtemp(prefix="zeronode-bench-"))
    try:
        big_file = workdir / "big-object"
        write_big_file(big_file, workload.big_bytes)
        return [run_target(name, workload, workdir, big_file) for name in targets]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- machine and versions --------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpuinfo_field("model name"),
        "memory_gib": round(_meminfo_kib("MemTotal") / (1 << 20), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("zeronode", "boto3", "botocore", "s3transfer", "awscrt", "moto")
        },
        "zeronode_commit": _git_commit(),
    }


def _cpuinfo_field(name: str) -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        label, _, value = line.partition(":")
        if label.strip() == name:
            return value.strip()
    return None


def _meminfo_kib(name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD of the checkout, with ``+dirty`` when the tree has uncommitted changes."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], check=False, cwd=servers.REPO_ROOT, capture_output=True, text=True
        )

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "") if head.returncode == 0 else None


# --- the report ------------------------------------------------------------------------------


@dataclass
class Check:
    title: str
    status: str  # PASS, FAIL or N/A
    detail: str


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def mib(size: int | None) -> float | None:
    return None if size is None else size / MiB


def target_table(target: TargetResult) -> list[str]:
    header = f"== {target.name}"
    if target.endpoint:
        header += f"  {target.endpoint}  pid {target.pid}  ready in {target.startup_s:.1f} s"
    header += f"  (load average {fmt(target.load_average, '.2f')} at start)"
    lines = [header]
    columns = ("phase", "ok", "err", "ops/s", "p50 ms", "p99 ms", "seconds",
               "srv CPU s", "srv ms/op", "cli ms/op", "MiB/s", "peak RSS MiB")  # fmt: skip
    rows = [columns]
    for p in target.phases:
        rows.append((
            p.name, str(p.ops), str(sum(p.errors.values())), fmt(p.ops_per_s), fmt(p.p50_ms, ".2f"),
            fmt(p.p99_ms, ".2f"), fmt(p.seconds, ".2f"), fmt(p.server_cpu_s, ".2f"),
            fmt(p.server_ms_per_op, ".3f"), fmt(p.client_ms_per_op, ".3f"), fmt(p.mib_per_s),
            fmt(mib(p.peak_rss_bytes)),
        ))  # fmt: skip
    if target.phases:
        lines += table(rows)
    for p in target.phases:
        if p.errors:
            counts = ", ".join(f"{label} x{n}" for label, n in p.errors.items())
            gave_up = " (abandoned: every call failed)" if p.abandoned else ""
            lines.append(f"  errors in {p.name}: {counts}{gave_up}\n    first: {p.first_error}")
    if target.failure:
        lines.append(f"  FAILED: {target.failure}")
    if target.log_tail:
        lines.append("  server log (tail):")
        lines += [f"    | {shorten(line, 240)}" for line in target.log_tail.splitlines()]
    return lines


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]


# (phase key part, label, format, metric): what each kind of phase is compared on.
RATIO_METRICS: list[tuple[str, str, str, Callable[[PhaseResult], float | None]]] = [
    ("_small_", "ops/s", ".1f", lambda p: p.ops_per_s),
    ("_small_", "server CPU ms/op", ".3f", lambda p: p.server_ms_per_op),
    ("_big", "MiB/s", ".1f", lambda p: p.mib_per_s),
    ("create_keys", "ops/s", ".1f", lambda p: p.ops_per_s),
    ("create_keys", "server CPU ms/op", ".3f", lambda p: p.server_ms_per_op),
    ("list", "seconds", ".2f", lambda p: p.seconds),
]


def ratio_table(results: dict[str, TargetResult], phase_keys: list[tuple[str, str]]) -> list[str]:
    names = [name for name in TARGETS if name in results]
    rows: list[tuple[str, ...]] = [("phase", "metric", *names, "zeronode/moto", "zeronode/null")]
    for key, name in phase_keys:
        for part, label, spec, metric in RATIO_METRICS:
            if part not in key:
                continue
            values = {n: _metric(results[n], key, metric) for n in names}
            ratios = (fmt(_ratio(values, base), ".2f") for base in ("moto", "null"))
            rows.append((name, label, *(fmt(values[n], spec) for n in names), *ratios))
    return ["== ratios"] + table(rows)


def _metric(
    target: TargetResult, key: str, metric: Callable[[PhaseResult], float | None]
) -> float | None:
    phase, _ = _usable(target, key, target.name)
    return metric(phase) if phase else None


def _ratio(values: dict[str, float | None], base: str) -> float | None:
    ours, theirs = values.get("zeronode"), values.get(base)
    return ours / theirs if ours is not None and theirs else None


def checks(results: dict[str, TargetResult], workload: Workload) -> list[Check]:
    """The targets of issue 3, each PASS, FAIL or N/A (with why)."""
    zn, moto, null = (results.get(name) for name in TARGETS)
    small = [(f"{verb}_small_c{c}", f"{verb.upper()} 4KiB c{c}") for c in CONCURRENCIES
             for verb in ("put", "get")]  # fmt: skip
    found = [
        _relative_check(zn, moto, key, f"{name}: server CPU/op <= 1/4 of moto's",
                        server_ms_per_op, lambda ratio: ratio <= 0.25)
        for key, name in small
    ]  # fmt: skip
    found += [
        _relative_check(zn, null, key, f"{name}: ops/s >= 90% of the null ceiling",
                        ops_per_s, lambda ratio: ratio >= 0.9)
        for key, name in small
    ]  # fmt: skip
    big = size_label(workload.big_bytes)
    for suffix, label in (("", "boto3"), ("_raw", "raw client")):
        if label.split()[0] in workload.big_clients:
            found.append(_throughput_check(
                zn, f"put_big{suffix}", f"PUT {big} >= 400 MiB/s ({label})", 400))
            found.append(_throughput_check(
                zn, f"get_big{suffix}", f"GET {big} >= 1024 MiB/s ({label})", 1024))
    found.append(_rss_check(zn, big, workload.big_clients))
    return found


def server_ms_per_op(phase: PhaseResult) -> float | None:
    return phase.server_ms_per_op


def ops_per_s(phase: PhaseResult) -> float | None:
    return phase.ops_per_s


def _usable(target: TargetResult | None, key: str, who: str) -> tuple[PhaseResult | None, str]:
    """The phase if it measured something without errors, else None and why not."""
    if target is None:
        return None, f"{who} not run"
    phase = target.phase(key)
    if phase is None:
        return None, f"{target.name}: phase not run ({target.failure or 'skipped'})"
    if phase.errors:
        first = shorten(phase.first_error or "", 160)
        return None, f"{target.name}: {sum(phase.errors.values())} errors ({first})"
    return phase, ""


def _zeronode_missing(title: str, zn: TargetResult | None, key: str, why: str) -> Check:
    """Errors in zeronode's own phase fail the target; a phase that never ran is N/A."""
    return Check(title, "FAIL" if zn and zn.phase(key) else "N/A", why)


def _relative_check(
    zn: TargetResult | None,
    base: TargetResult | None,
    key: str,
    title: str,
    metric: Callable[[PhaseResult], float | None],
    passes: Callable[[float], bool],
) -> Check:
    ours, why = _usable(zn, key, "zeronode")
    if ours is None:
        return _zeronode_missing(title, zn, key, why)
    theirs, why = _usable(base, key, "the baseline")
    ours_value, theirs_value = metric(ours), metric(theirs) if theirs else None
    if base is None or ours_value is None or not theirs_value:
        return Check(title, "N/A", why or "no measurement")
    ratio = ours_value / theirs_value
    detail = f"zeronode {ours_value:.4g} / {base.name} {theirs_value:.4g} = {ratio:.2f}"
    return Check(title, "PASS" if passes(ratio) else "FAIL", detail)


def _throughput_check(zn: TargetResult | None, key: str, title: str, minimum: float) -> Check:
    ours, why = _usable(zn, key, "zeronode")
    if ours is None or ours.mib_per_s is None:
        return _zeronode_missing(title, zn, key, why or "no measurement")
    value = ours.mib_per_s
    return Check(title, "PASS" if value >= minimum else "FAIL", f"{value:.1f} MiB/s")


def _rss_check(zn: TargetResult | None, big: str, clients: Sequence[str]) -> Check:
    title = f"zeronode peak RSS < 150 MiB during the {big} PUT and GET"
    keys = [f"{verb}_big{'' if client == 'boto3' else '_raw'}"
            for client in clients for verb in ("put", "get")]  # fmt: skip
    transfers = {key: _usable(zn, key, "zeronode") for key in keys}
    for key, (phase, why) in transfers.items():
        if phase is None:
            return _zeronode_missing(title, zn, key, why)
    peak = max(phase.peak_rss_bytes or 0 for phase, _ in transfers.values() if phase) / MiB
    return Check(title, "PASS" if peak < 150 else "FAIL", f"{peak:.1f} MiB")


def report(
    machine: dict[str, Any], workload: Workload, results: list[TargetResult], found: list[Check]
) -> str:
    versions = ", ".join(
        f"{name} {version or 'absent'}" for name, version in machine["versions"].items()
    )
    cpus = f"{machine['nproc']} CPUs ({machine['usable_cpus']} usable), {machine['cpu_model']}"
    system = f"Linux {machine['kernel']}, Python {machine['python']}"
    big = size_label(workload.big_bytes)
    sizes = f"{workload.small_ops} ops per 4 KiB phase, {big} object, {workload.list_keys} keys"
    lines = [
        f"machine: {cpus}, {machine['memory_gib']} GiB, {system}",
        f"versions: {versions}; zeronode commit {machine['zeronode_commit']}",
        f"workload: {sizes}"
        + ("  (smaller than the issue's: indicative only)" if workload.quick else ""),
        "",
    ]
    by_name = {target.name: target for target in results}
    for target in results:
        lines += target_table(target) + [""]
    phase_keys = [(key, name) for key, name, _ in plan(workload, Path())]
    lines += ratio_table(by_name, phase_keys) + ["", "== targets (issue 3)"]
    lines += [f"  {check.status:4}  {check.title}: {check.detail}" for check in found]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes for a first look: {QUICK} (full: {FULL})")  # fmt: skip
    parser.add_argument("--targets", default=",".join(TARGETS), type=_target_list,
                        help="comma-separated, from: " + ", ".join(TARGETS))  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument("--ops", type=int, help="operations per 4 KiB phase")
    parser.add_argument("--big-mib", type=int, help="size of the big object, MiB")
    parser.add_argument("--keys", type=int, help="keys to create and list")
    parser.add_argument("--client", choices=("boto3", "raw", "both"), default="both",
                        help="who moves the big object: boto3 (what users see), the lean raw "
                        "client (the server's ceiling) or both, one after the other")  # fmt: skip
    return parser.parse_args(argv)


def _target_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown targets {unknown}; choose from {', '.join(TARGETS)}"
        )
    return names


def workload_from(args: argparse.Namespace) -> Workload:
    sizes = QUICK if args.quick else FULL
    return Workload(
        small_ops=args.ops or sizes["ops"],
        big_bytes=(args.big_mib or sizes["big_mib"]) * MiB,
        list_keys=args.keys or sizes["keys"],
        quick=args.quick or bool(args.ops or args.big_mib or args.keys),
        big_clients=BIG_CLIENTS if args.client == "both" else (args.client,),
    )


def _interrupt(signum: int, _frame: Any) -> None:
    """SIGTERM is treated as Ctrl-C: every server is stopped, the temp dir removed."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    workload = workload_from(args)
    machine = machine_info()
    try:
        results = run(args.targets, workload)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    found = checks({target.name: target for target in results}, workload)
    print(report(machine, workload, results, found), flush=True)
    if args.json:
        document = {
            "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
            "machine": machine,
            "workload": asdict(workload),
            "targets": [target.to_json() for target in results],
            "checks": [asdict(check) for check in found],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
