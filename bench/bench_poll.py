"""Poll-stage cost and politeness: one cycle over N feeds served by a loopback feed farm.

    .venv/bin/python bench/bench_poll.py [--feeds 10000] [--hosts 200] [--min-interval 0.5] [--max-concurrent 2]
                                         [--concurrency N] [--tolerance 0.02] [--json] [--keep-log FILE]

Target (issue): 10,000 feeds in one 10-minute cycle using under one core on average, and zero requests to a
host faster than its limit, as seen by the server. What runs:

- a private ``redis-server`` and ``bench/feed_farm.py`` (its own process, N loopback addresses = N hosts;
  70% of feeds answer 304, 20% an unchanged 200, 10% new items; a few are slow, 500 or 429);
- cycle 0 (warm-up, not measured): ``ingest.pipeline.poll_feeds`` reads every feed once, priming validators
  and the queued set; cycle 1 (measured): the same call again. Measured: wall time, this process's CPU
  (all threads), redis-server's and the farm's CPU (from /proc), the poller's peak RSS;
- baseline, same run, same farm: the measured cycle's requests done with a bare ``httpx.AsyncClient``
  (conditional GET with the validators the poller learned, body read, no parsing, no Redis, no politeness);
- politeness from the farm's own request log (not the poller's view), over cycles 0 and 1: per host the gaps
  between consecutive request starts and the peak number of requests in flight.

Figures, not pass/fail timings (this machine is shared and noisy: read the ratios). The exit status is 1 when
the farm's log shows a politeness violation, so it cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from feed_farm import NEW_PER_REQUEST, address_of, behaviour  # bench/ is on sys.path when run as a script

from ingest.config import Settings, load_settings
from ingest.embedded.services import free_port, spawn_redis
from ingest.models import FeedSource
from ingest.pipeline import poll_feeds
from ingest.report import Report
from ingest.runtime import Runtime, build_poll_runtime

BENCH_DIR = Path(__file__).resolve().parent

CYCLE_SECONDS = 600.0
MAX_TOLERANCE = 0.020  # the farm event loop's own lateness, measured and printed
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Outcomes of a feed read that went as it should; any other poll/<reason> is an error (or a skipped feed).
OK_OUTCOMES = {"feeds_ok", "not_modified", "unchanged", "entries", "queued", "already_queued", "already_indexed",
               "entry_without_link"}


# ---------------------------------------------------------------- processes


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_farm(hosts: int, tmp: Path, timeout: float = 30.0) -> tuple[subprocess.Popen[str], int]:
    """Start the feed farm (log, stats and stderr in ``tmp``) and wait for its ``READY <port>`` line."""
    args = [sys.executable, str(BENCH_DIR / "feed_farm.py"), "--hosts", str(hosts), "--port", "0",
            "--log", str(tmp / "farm.jsonl"), "--stats", str(tmp / "farm_stats.json")]
    stderr = tmp / "farm.err"
    with stderr.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else ""
        if line.startswith("READY "):
            return proc, int(line.split()[1])
        if ready and not line:  # EOF: the farm died
            break
    stop(proc)
    raise SystemExit(f"bench: the feed farm did not start:\n{stderr.read_text()}")


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Services:
    redis: subprocess.Popen[bytes]
    redis_port: int
    farm: subprocess.Popen[str]
    farm_port: int


@contextmanager
def services(hosts: int, tmp: Path) -> Iterator[Services]:
    """A private redis-server and the feed farm, both stopped on the way out."""
    redis_port = free_port()
    redis_proc = spawn_redis(redis_port, tmp / "redis")
    try:
        farm, farm_port = start_farm(hosts, tmp)
        try:
            yield Services(redis_proc, redis_port, farm, farm_port)
        finally:
            stop(farm)
    finally:
        stop(redis_proc)


# ---------------------------------------------------------------- cycles


@dataclass
class Cycle:
    report: Report
    wall: float
    cpu: float
    redis_cpu: float
    farm_cpu: float
    t_start: float  # time.time(), to cut the farm's log
    t_end: float


def measure(fn: Callable[[], Report], redis_pid: int, farm_pid: int) -> Cycle:
    redis0, farm0 = proc_cpu(redis_pid), proc_cpu(farm_pid)
    t0, wall0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    report = fn()
    wall, cpu, t1 = time.perf_counter() - wall0, time.process_time() - cpu0, time.time()
    return Cycle(report, wall, cpu, proc_cpu(redis_pid) - redis0, proc_cpu(farm_pid) - farm0, t0, t1)


def poll_cycle(rt: Runtime, feeds: Sequence[FeedSource]) -> Report:
    return poll_feeds(rt, feeds, now=datetime.now(UTC), due_only=False)


async def _baseline(feeds: Sequence[FeedSource], validators: dict[str, dict[str, str]], settings: Settings,
                    statuses: Counter[str]) -> None:
    concurrency = settings.feeds.concurrency
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(settings.http.timeout, connect=settings.http.connect_timeout)
    headers = {"User-Agent": "bench-baseline", "Accept-Encoding": "gzip, deflate"}
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers, trust_env=False) as client:

        async def one(feed: FeedSource) -> None:
            async with slots:
                try:
                    response = await client.get(feed.url, headers=validators.get(feed.id, {}))
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as e:
                    statuses[type(e).__name__] += 1

        await asyncio.gather(*(one(feed) for feed in feeds))


def baseline_cycle(feeds: Sequence[FeedSource], validators: dict[str, dict[str, str]], settings: Settings) -> Report:
    report = Report()
    asyncio.run(_baseline(feeds, validators, settings, report.counts))
    return report


def learned_validators(rt: Runtime, feeds: Sequence[FeedSource]) -> dict[str, dict[str, str]]:
    """The conditional-GET headers the poller would send next, from the feed states it stored."""
    out: dict[str, dict[str, str]] = {}
    if rt.feed_state is None:
        return out
    for feed in feeds:
        state = rt.feed_state.get(feed.id)
        headers = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        out[feed.id] = headers
    return out


# ---------------------------------------------------------------- politeness


def read_log(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def farm_lag(stats_file: Path, t_start: float, t_end: float) -> dict[str, Any]:
    """The farm's event-loop lateness between two times: how far its logged ``t_start`` may trail the truth."""
    if not stats_file.exists():
        return {}
    stats = json.loads(stats_file.read_text())
    lags = [late for t, late in stats["lags"] if t_start <= t <= t_end]
    return {"farm_loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 1),
            "farm_loop_lag_over_5ms": sum(1 for late in lags if late > 0.005),
            "farm_loop_lag_probes": stats["lag_samples"]}


def politeness(rows: Sequence[dict[str, Any]], min_interval: float, max_concurrent: int,
               tolerance: float) -> dict[str, Any]:
    """Per host: gaps between consecutive request starts and requests in flight, from the server's log."""
    by_host: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        by_host[row["host"]].append((row["t_start"], row["t_end"]))
    gaps: list[float] = []
    below_raw = too_close = over_limit = peak = 0
    worst: list[tuple[float, str]] = []
    for host, requests in by_host.items():
        requests.sort()
        for (a, _), (b, _) in pairwise(requests):
            gap = b - a
            gaps.append(gap)
            if gap < min_interval:
                below_raw += 1
            if gap < min_interval - tolerance:
                too_close += 1
                worst.append((gap, host))
        # Sweep over starts and ends; at equal times an end comes first (the slot was free again).
        events = sorted([(s, 1) for s, _ in requests] + [(e, -1) for _, e in requests], key=lambda x: (x[0], x[1]))
        inflight = 0
        for _, delta in events:
            inflight += delta
            peak = max(peak, inflight)
            if delta > 0 and inflight > max_concurrent:
                over_limit += 1
    counts = [len(r) for r in by_host.values()]
    gaps.sort()

    def gap_quantile(q: float) -> float | None:
        return round(gaps[min(len(gaps) - 1, int(q * len(gaps)))], 4) if gaps else None

    return {
        "hosts_seen": len(by_host),
        "requests": len(rows),
        "requests_per_host_min": min(counts, default=0),
        "requests_per_host_max": max(counts, default=0),
        "min_interval_s": min_interval,
        "tolerance_s": tolerance,
        "min_gap_s": gap_quantile(0.0),
        "gap_p1_s": gap_quantile(0.01),
        "gap_p5_s": gap_quantile(0.05),
        "gap_median_s": gap_quantile(0.5),
        "gaps_below_min_interval": below_raw,
        "gaps_below_min_minus_tolerance": too_close,
        "closest_gaps": [{"host": h, "gap_s": round(g, 4)} for g, h in sorted(worst)[:5]],
        "max_concurrent": max_concurrent,
        "peak_in_flight": peak,
        "starts_over_max_concurrent": over_limit,
        "violations": too_close + over_limit,
    }


# ---------------------------------------------------------------- figures


def expected_outcomes(feeds: Sequence[FeedSource]) -> dict[str, int]:
    """What the measured cycle should count if every feed is read once (the farm's behaviour is fixed per feed)."""
    out: Counter[str] = Counter()
    for feed in feeds:
        kind, fault = behaviour(int(feed.url.rsplit("/", 1)[1].removesuffix(".xml")))
        if fault in ("http_500", "http_429"):
            out["http_5xx" if fault == "http_500" else "http_429"] += 1
            continue
        out[{"etag": "not_modified", "static": "unchanged", "fresh": "parsed"}[kind]] += 1
        if fault == "slow":
            out["slow"] += 1
    out["queued"] = out["parsed"] * NEW_PER_REQUEST
    return dict(sorted(out.items()))


def poll_counts(report: Report) -> dict[str, int]:
    return {k.removeprefix("poll/"): v for k, v in sorted(report.counts.items()) if k.startswith("poll/")}


def window(rows: Sequence[dict[str, Any]], cycle: Cycle) -> list[dict[str, Any]]:
    return [r for r in rows if cycle.t_start <= r["t_start"] <= cycle.t_end]


def figures(args: argparse.Namespace, settings: Settings, warm: Cycle, cycle: Cycle, base: Cycle,
            rows: Sequence[dict[str, Any]], lag: dict[str, Any], expected: dict[str, int]) -> dict[str, Any]:
    counts = poll_counts(cycle.report)
    parsed = counts.get("feeds_ok", 0) - counts.get("not_modified", 0) - counts.get("unchanged", 0)
    measured_rows = window(rows, cycle)
    served = Counter(str(r["status"]) for r in measured_rows)
    polite_rows = [r for r in rows if warm.t_start <= r["t_start"] <= cycle.t_end]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "feeds": args.feeds,
        "hosts": args.hosts,
        "host_min_interval_s": settings.http.host_min_interval_seconds,
        "host_max_concurrent": settings.http.host_max_concurrent,
        "feed_concurrency": settings.feeds.concurrency,
        "warmup": {"wall_s": round(warm.wall, 2), "poller_cpu_s": round(warm.cpu, 2),
                   "redis_cpu_s": round(warm.redis_cpu, 2), "counts": poll_counts(warm.report)},
        "wall_s": round(cycle.wall, 3),
        "poller_cpu_s": round(cycle.cpu, 3),
        "cores_over_10min_cycle": round(cycle.cpu / CYCLE_SECONDS, 4),
        "cpu_per_wall": round(cycle.cpu / cycle.wall, 3) if cycle.wall else None,
        "redis_cpu_s": round(cycle.redis_cpu, 3),
        "farm_cpu_s": round(cycle.farm_cpu, 3),
        "poller_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fits_in_cycle": cycle.wall <= CYCLE_SECONDS,
        "farm_requests": len(measured_rows),
        "requests_per_s": round(len(measured_rows) / cycle.wall, 1) if cycle.wall else None,
        "farm_statuses": dict(sorted(served.items())),
        "counts": counts,
        "parsed": parsed,
        "errors": {k: v for k, v in counts.items() if k not in OK_OUTCOMES},
        "expected": expected,
        "baseline": {"wall_s": round(base.wall, 3), "cpu_s": round(base.cpu, 3),
                     "statuses": dict(sorted(base.report.counts.items()))},
        "cpu_ratio_poller_over_baseline": round(cycle.cpu / base.cpu, 2) if base.cpu else None,
        "politeness": politeness(polite_rows, settings.http.host_min_interval_seconds,
                                 settings.http.host_max_concurrent, args.tolerance) | lag,
    }


def print_figures(f: dict[str, Any]) -> None:
    p = f["politeness"]
    c = f["counts"]
    e = f["expected"]
    lines = [
        f"feeds {f['feeds']}  hosts {f['hosts']}  per host: min interval {f['host_min_interval_s']} s, "
        f"max {f['host_max_concurrent']} in flight  feed concurrency {f['feed_concurrency']}",
        f"warm-up      {f['warmup']['wall_s']:8.2f} s wall  {f['warmup']['poller_cpu_s']:7.2f} s CPU (not measured)",
        f"cycle        {f['wall_s']:8.2f} s wall   fits in {CYCLE_SECONDS:.0f} s: "
        f"{'yes' if f['fits_in_cycle'] else 'NO'}",
        f"poller CPU   {f['poller_cpu_s']:8.2f} s   cores over a 10-min cycle {f['cores_over_10min_cycle']:.4f}   "
        f"CPU/wall {f['cpu_per_wall']}",
        f"redis CPU    {f['redis_cpu_s']:8.2f} s   farm CPU {f['farm_cpu_s']:.2f} s (separate processes)",
        f"peak RSS     {f['poller_peak_rss_mb']:8.1f} MB (poller)",
        f"requests     {f['farm_requests']} served ({f['requests_per_s']}/s)  farm statuses {f['farm_statuses']}",
        f"outcomes     not_modified {c.get('not_modified', 0)} (expected {e.get('not_modified', 0)})  "
        f"unchanged {c.get('unchanged', 0)} ({e.get('unchanged', 0)})  parsed {f['parsed']} ({e.get('parsed', 0)})  "
        f"queued {c.get('queued', 0)} ({e.get('queued', 0)})",
        f"errors       {f['errors'] or 'none'}   expected failures: http_5xx {e.get('http_5xx', 0)}, "
        f"http_429 {e.get('http_429', 0)}; slow feeds {e.get('slow', 0)}",
        f"all counts   {c}",
        f"baseline     {f['baseline']['wall_s']:.2f} s wall  {f['baseline']['cpu_s']:.2f} s CPU "
        f"(bare httpx.AsyncClient, conditional GET, no parsing/Redis/politeness)  {f['baseline']['statuses']}",
        f"ratio        poller CPU / baseline CPU = {f['cpu_ratio_poller_over_baseline']}",
        f"politeness   (farm log, warm-up + cycle: {p['requests']} requests on {p['hosts_seen']} hosts, "
        f"{p['requests_per_host_min']}-{p['requests_per_host_max']} per host)",
        f"  gaps between starts: min {p['min_gap_s']} s, p1 {p['gap_p1_s']}, p5 {p['gap_p5_s']}, "
        f"median {p['gap_median_s']} vs {p['min_interval_s']} s; below it: "
        f"{p['gaps_below_min_interval']} raw, {p['gaps_below_min_minus_tolerance']} beyond the tolerance of "
        f"{p['tolerance_s'] * 1000:.0f} ms {p['closest_gaps'] or ''}",
        f"  peak in flight per host {p['peak_in_flight']} vs max {p['max_concurrent']}; "
        f"starts over the max: {p['starts_over_max_concurrent']}",
        f"  farm's own loop lag (bounds its timestamp error): max {p.get('farm_loop_lag_max_ms', '?')} ms, "
        f"{p.get('farm_loop_lag_over_5ms', '?')} probes over 5 ms",
        f"politeness violations: {p['violations']}",
    ]
    if p.get("farm_loop_lag_max_ms", 0) > p["tolerance_s"] * 1000:
        lines.append(f"  warning: the farm's loop ran up to {p['farm_loop_lag_max_ms']} ms late, more than the "
                     "tolerance: some of its timestamps may be off by more than that")
    print("\n".join(lines))


# ---------------------------------------------------------------- main


def configure(args: argparse.Namespace, redis_port: int) -> Settings:
    env = {
        "INGEST_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
        "INGEST_REDIS__PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "INGEST_HTTP__ALLOW_PRIVATE": "true",
        "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS": str(args.min_interval),
        "INGEST_HTTP__HOST_MAX_CONCURRENT": str(args.max_concurrent),
    }
    if args.concurrency:
        env["INGEST_FEEDS__CONCURRENCY"] = str(args.concurrency)
    os.environ.update(env)
    return load_settings()


def make_feeds(count: int, hosts: int, port: int) -> list[FeedSource]:
    return [FeedSource(id=f"f{n:05d}", url=f"http://{address_of(n % hosts)}:{port}/feed/{n}.xml",
                       name=f"Farm feed {n}") for n in range(count)]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the try/finally blocks that stop redis-server and the farm


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--min-interval", type=float, default=0.5, help="per-host seconds between request starts")
    parser.add_argument("--max-concurrent", type=int, default=2, help="per-host requests in flight")
    parser.add_argument("--concurrency", type=int, default=0, help="feeds fetched at once (default: settings)")
    parser.add_argument("--tolerance", type=float, default=MAX_TOLERANCE,
                        help=f"timing slack of the gap check, at most {MAX_TOLERANCE} s")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--keep-log", type=Path, help="copy the farm's request log here")
    parser.add_argument("--verbose", action="store_true", help="show the pipeline's warnings (failing feeds)")
    args = parser.parse_args()
    if not 0 <= args.tolerance <= MAX_TOLERANCE:
        parser.error(f"--tolerance must be between 0 and {MAX_TOLERANCE}")
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory(prefix="bench_poll-") as tmp_name:
        tmp = Path(tmp_name)
        with services(args.hosts, tmp) as svc:
            settings = configure(args, svc.redis_port)
            rt = build_poll_runtime(settings)
            pids = (svc.redis.pid, svc.farm.pid)
            try:
                feeds = make_feeds(args.feeds, args.hosts, svc.farm_port)
                print(f"bench: {len(feeds)} feeds on {args.hosts} hosts (farm port {svc.farm_port}); warm-up cycle…",
                      file=sys.stderr, flush=True)
                warm = measure(lambda: poll_cycle(rt, feeds), *pids)
                print(f"bench: warm-up took {warm.wall:.1f} s; measured cycle…", file=sys.stderr, flush=True)
                cycle = measure(lambda: poll_cycle(rt, feeds), *pids)
                validators = learned_validators(rt, feeds)
                print(f"bench: cycle took {cycle.wall:.1f} s; baseline…", file=sys.stderr, flush=True)
                base = measure(lambda: baseline_cycle(feeds, validators, settings), *pids)
            finally:
                rt.fetcher.close()
            stop(svc.farm)  # the farm writes out its log on SIGTERM
        log = tmp / "farm.jsonl"
        if args.keep_log:
            args.keep_log.write_bytes(log.read_bytes())
        lag = farm_lag(tmp / "farm_stats.json", warm.t_start, cycle.t_end)
        result = figures(args, settings, warm, cycle, base, read_log(log), lag, expected_outcomes(feeds))
    print_figures(result)
    if args.json:
        print(json.dumps(result))
    return 1 if result["politeness"]["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
