"""End to end: N copies of real pages and their feeds on loopback, poll, then process into an empty index, against
the CPU ceiling of the same work measured in the same run (this machine is shared and noisy: read the ratios).

    .venv/bin/python bench/bench_e2e.py [--articles 1000,10000] [--cli/--no-cli] [--airflow/--no-airflow] [--quick]
                                        [--latency-ms MS] [--json]

For each N (``bench/e2e_corpus.py`` makes the corpus: half unique articles, half near-duplicates of an earlier one):

- a site server (its own process, 20 loopback hosts 127.0.1.x, ``PER_FEED`` = 100 articles per RSS feed, a
  robots.txt that allows everything; its CPU is printed apart, not counted);
- per measured run a fresh ``redis-server`` and ``osmem-server`` (empty index), then ``ingest poll`` (not measured);
- ``ingest process`` (default settings: workers = cores; ``--max-batches`` high enough to drain the stream), and
  the Airflow path: the ``ingest_process_articles`` DAG on a real LocalExecutor with the 2-slot pool, triggered
  through the REST API until the stream is empty (default settings: a run maps one worker per 40 batches, at
  least one per slot: one run drains the stream);
- sampled every 0.5 s with psutil: CPU and RSS of the ingest process tree (the Airflow tree: api-server,
  scheduler, dag-processor and the tasks), redis-server, osmem-server; the stream's length (progress).

Environment of every ``ingest`` command: ``INGEST_HTTP__ALLOW_PRIVATE=true`` (loopback pages),
``INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS=0`` and ``INGEST_HTTP__HOST_MAX_CONCURRENT=8`` (politeness is not what
is measured), the services' URLs, a state dir of its own (the demo's services are never used).

Ceiling (each run its own, on ``--sample`` corpus pages): ``trafilatura.bare_extraction(with_metadata=True)``
alone; spaCy ``nlp.pipe`` of each language's model reduced to NER alone, as ingest loads it (``NlpSettings``: fr,
en; other languages have no NER) on title + text alone — both measured just before and just after the run, the
mean taken (this shared machine's speed drifts: the same pages took 0.043 to 0.103 s to extract in one day), the
drift printed; ``elasticsearch.helpers.streaming_bulk`` alone of the run's own indexed documents (chunks of
``pipeline.batch_size``) into a fresh index with the same template, osmem's CPU included. ceiling = cores / the
sum of the per-article CPU seconds: every article's work done in full (unique work). Reuse shows as a ratio above
1; the stricter figure ("uniq") counts NER for the unique share of the corpus only.
Targets are printed as met / not met; the exit status is 0 whatever they say (non-zero: setup failed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from e2e_corpus import PER_FEED, write_site  # bench/ is on sys.path when run as a script

from ingest.config import NlpSettings, PipelineSettings, load_settings
from ingest.embedded.services import free_port, spawn_redis, spawn_search
from ingest.errors import ConfigError

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CORES = os.cpu_count() or 1
HOSTS = 20
PREFIX = "e2e"
GB = 1024**3
TARGETS = {"cli_ratio": 0.85, "airflow_ratio": 0.70, "unique_ratio": 1.0, "rss_gb": 1.5, "flat": 0.10}


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fail(message: str) -> SystemExit:
    return SystemExit(f"bench_e2e: setup failed: {message}")


# ---------------------------------------------------------------- sampling


def _label(cmdline: list[str]) -> str:
    joined = " ".join(cmdline)
    if "-c" in cmdline[1:3]:  # a multiprocessing child
        return "resource_tracker" if "resource_tracker" in joined else "ingest worker (multiprocessing child)"
    return " ".join(Path(cmdline[1]).name if i == 1 and len(cmdline) > 1 else c
                    for i, c in enumerate(cmdline[:4]))[-80:]


class Sampler(threading.Thread):
    """Every ``interval`` s: CPU (own + waited-for children) and RSS of each group's process trees; the stream's
    length."""

    def __init__(self, groups: dict[str, list[int]], r: redis.Redis, stream: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.groups, self.r, self.stream, self.interval = groups, r, stream, interval
        self.done = threading.Event()
        self.cpu: dict[str, list[float]] = {g: [] for g in groups}  # first and last reading of each group
        self.peak: dict[int, tuple[str, str, int]] = {}  # pid -> (group, label, peak RSS bytes)
        self.progress: list[tuple[float, int]] = []

    @staticmethod
    def tree(pids: list[int], children: dict[int, list[int]]) -> list[psutil.Process]:
        out, todo = [], list(pids)
        while todo:
            pid = todo.pop()
            with suppress(psutil.Error):
                out.append(psutil.Process(pid))
            todo += children.get(pid, [])
        return out

    def read(self) -> None:
        # One pass over the machine's processes for every group's tree (psutil's children() makes one per call).
        children: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["ppid"]):
            children.setdefault(proc.info["ppid"], []).append(proc.pid)
        for group, pids in self.groups.items():
            total = 0.0
            for p in self.tree(pids, children):
                try:
                    with p.oneshot():
                        t = p.cpu_times()
                        rss = p.memory_info().rss
                        label = self.peak[p.pid][1] if p.pid in self.peak else _label(p.cmdline())
                except psutil.Error:
                    continue
                total += t.user + t.system + t.children_user + t.children_system
                if rss > self.peak.get(p.pid, ("", "", 0))[2]:
                    self.peak[p.pid] = (group, label, rss)
            self.cpu[group] = [self.cpu[group][0] if self.cpu[group] else total, total]
        with suppress(redis.RedisError):
            self.progress.append((time.perf_counter(), int(self.r.xlen(self.stream))))

    def run(self) -> None:
        while not self.done.is_set():
            self.read()
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.read()
        self.done.set()
        self.join()

    def cpu_of(self, group: str) -> float:
        values = self.cpu.get(group, [])
        return values[-1] - values[0] if len(values) == 2 else 0.0

    def steady_rate(self, total: int) -> float | None:
        """Articles/s between 10% and 90% of the stream done (start-up and the tail left out)."""
        rows = [(t, total - n) for t, n in self.progress]
        lo = next(((t, d) for t, d in rows if d >= 0.1 * total), None)
        hi = next(((t, d) for t, d in rows if d >= 0.9 * total), None)
        if lo is None or hi is None or hi[0] <= lo[0]:
            return None
        return (hi[1] - lo[1]) / (hi[0] - lo[0])


# ---------------------------------------------------------------- services and runs


@contextmanager
def services(tmp: Path) -> Iterator[dict[str, Any]]:
    """A fresh redis-server and osmem-server (empty index) for one measured run."""
    redis_port, search_port = free_port(), free_port()
    rproc = spawn_redis(redis_port, tmp / f"redis-{redis_port}")
    try:
        sproc = spawn_search(search_port)
        try:
            env = {
                "INGEST_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
                "INGEST_REDIS__PREFIX": PREFIX,
                "INGEST_ELASTICSEARCH__HOSTS": json.dumps([f"http://127.0.0.1:{search_port}"]),
                "INGEST_ELASTICSEARCH__SERVER_MODE": "serverless",
                "INGEST_ELASTICSEARCH__INDEX_PREFIX": "news-e2e",
                "INGEST_HTTP__ALLOW_PRIVATE": "true",
                "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS": "0",
                "INGEST_HTTP__HOST_MAX_CONCURRENT": "8",
                "INGEST_EMBEDDED__STATE_DIR": str(tmp / "state"),
            } | SETTINGS_SET
            yield {"env": env, "redis": rproc, "search": sproc, "search_url": f"http://127.0.0.1:{search_port}",
                   "client": redis.Redis(port=redis_port, decode_responses=True)}
        finally:
            stop(sproc)
    finally:
        stop(rproc)


# ``--set INGEST_X__Y=value``: settings of every ingest command and Airflow task of the run, and of the ceiling's
# bulk (its chunk is the batch size) — to measure a setting against its default.
SETTINGS_SET: dict[str, str] = {}


def pipeline_settings() -> PipelineSettings:
    """The pipeline settings the run's commands get: defaults, then ``--set``."""
    saved = {k: os.environ.get(k) for k in SETTINGS_SET}
    os.environ.update(SETTINGS_SET)
    try:
        return load_settings().pipeline
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ingest_env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")} | extra


def poll(svc: dict[str, Any], registry: Path, n: int) -> None:
    result = subprocess.run([str(BIN / "ingest"), "poll", "--feeds", str(registry)], env=ingest_env(svc["env"]),
                            capture_output=True, text=True, timeout=1800, check=False)
    queued = svc["client"].xlen(f"{PREFIX}:stream:pending")
    if result.returncode != 0 or queued != n:
        raise fail(f"ingest poll queued {queued} of {n} (exit {result.returncode}): "
                   f"{(result.stdout + result.stderr)[-1500:]}")


def order_check(svc: dict[str, Any], originals: dict[int, int]) -> float:
    """Share of near-duplicates queued after their original (the corpus is built so that all are)."""
    position: dict[int, int] = {}
    for k, (_, fields) in enumerate(svc["client"].xrange(f"{PREFIX}:stream:pending")):
        url = json.loads(fields["entry"])["url"]
        position[int(url.rsplit("/", 1)[1].removesuffix(".html"))] = k
    after = sum(position[d] > position[o] for d, o in originals.items())
    return after / len(originals) if originals else 1.0


def run_cli(svc: dict[str, Any], n: int) -> dict[str, Any]:
    batches = math.ceil(n / pipeline_settings().batch_size) + 10
    args = [str(BIN / "ingest"), "process", "--max-batches", str(batches)]
    groups = {"redis": [svc["redis"].pid], "osmem": [svc["search"].pid], "site": [svc["site"]]}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=ingest_env(svc["env"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sampler = Sampler({"ingest": [proc.pid], **groups}, svc["client"], f"{PREFIX}:stream:pending")
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise fail(f"ingest process exited {proc.returncode}: {(out + err)[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # the whole tree, waited for
    return {"wall": wall, "cpu": cpu, "sampler": sampler, "stdout": out, "command": " ".join(args[1:]), "runs": 1}


def run_airflow(svc: dict[str, Any], n: int, tmp: Path, celery_workers: int = 0) -> dict[str, Any]:
    """The process DAG on LocalExecutor (SQLite), or with ``celery_workers`` on Airflow's Celery executor
    (PostgreSQL metadata database and result backend, a Redis broker of its own; their CPU is counted)."""
    from ingest.config import AirflowSettings
    from ingest.embedded.airflow import LocalAirflow
    from ingest.embedded.services import spawn_postgres

    home = tmp / f"airflow-{uuid.uuid4().hex[:6]}"
    extra: list[subprocess.Popen[bytes]] = []
    airflow_env: dict[str, str] = {}
    pg_data: Path | None = None
    if celery_workers:
        pg_port, broker_port = free_port(), free_port()
        postgres, pg_data = spawn_postgres(pg_port)
        extra = [postgres, spawn_redis(broker_port, tmp / f"broker-{broker_port}")]
        airflow_env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/airflow",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        }
    airflow = LocalAirflow(home, free_port(), svc["env"], dag_ids=("ingest_process_articles",),
                           airflow_env=airflow_env,
                           celery_workers={f"w{k}": {} for k in range(celery_workers)})
    try:
        print("bench_e2e:   starting Airflow (not measured)…", file=sys.stderr, flush=True)
        try:
            airflow.start(AirflowSettings().pool_slots, AirflowSettings().pool)
        except (RuntimeError, subprocess.SubprocessError) as e:
            raise fail(f"Airflow did not start: {e}") from e
        groups = {"airflow": airflow.pids() + [p.pid for p in extra], "redis": [svc["redis"].pid],
                  "osmem": [svc["search"].pid], "site": [svc["site"]]}
        sampler = Sampler(groups, svc["client"], f"{PREFIX}:stream:pending")
        sampler.start()
        t0 = time.perf_counter()
        runs = []
        while svc["client"].xlen(f"{PREFIX}:stream:pending") and len(runs) < n // 500 + 5:
            runs.append(airflow.run_once("ingest_process_articles"))
            if runs[-1]["state"] != "success":
                break
        wall = time.perf_counter() - t0
        sampler.stop()
    finally:
        airflow.stop()
        for proc in extra:
            stop(proc)
        if pg_data is not None:
            shutil.rmtree(pg_data, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    return {"wall": wall, "cpu": sampler.cpu_of("airflow"), "sampler": sampler, "stdout": "", "runs": len(runs),
            "command": f"DAG {len(runs)} run(s): " + "; ".join(f"{r['state']} {r['tasks']}" for r in runs)}


def counters(svc: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(svc["client"].hgetall(f"{PREFIX}:stats").items())}


def stage_cpu(stdout: str) -> dict[str, float]:
    """``cpu seconds: name=value …`` from ingest process's output (absent: empty)."""
    m = re.search(r"^\s*cpu seconds:(.*)$", stdout, re.M)
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(1))} if m else {}


def figures(path: str, n: int, run: dict[str, Any], counts: dict[str, int], svc: dict[str, Any],
            ceiling: dict[str, Any] | None, order: float) -> dict[str, Any]:
    s: Sampler = run["sampler"]
    left = int(svc["client"].xlen(f"{PREFIX}:stream:pending"))
    final, wall = n - left, run["wall"]
    indexed = counts.get("index/indexed", 0)
    cpu = {"ingest": run["cpu"], "redis": s.cpu_of("redis"), "osmem": s.cpu_of("osmem")}
    main_group = "ingest" if path == "cli" else "airflow"
    procs = sorted(((g, label, rss) for pid, (g, label, rss) in s.peak.items()), key=lambda x: -x[2])
    workers = [(label, rss) for g, label, rss in procs
               if g == main_group and (path == "cli" or not any(c in label for c in ("api-server", "dag-processor")))]
    rate = final / wall if wall else 0.0
    out = {
        "path": path, "articles": n, "command": run["command"], "wall_s": round(wall, 2), "final": final,
        "left_pending": left, "articles_per_s": round(rate, 2), "indexed_per_s": round(indexed / wall, 2),
        "steady_articles_per_s": round(s.steady_rate(n) or 0, 2), "counts": counts,
        "near_duplicate_share": round(counts.get("dedup/near_duplicate", 0) / n, 3),
        "exact_duplicate_share": round(counts.get("dedup/duplicate_text", 0) / n, 3),
        "dups_queued_after_original": round(order, 3),
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()} | {"site_not_counted": round(s.cpu_of("site"), 2)},
        "cpu_s_per_article": round((cpu["ingest"] + cpu["redis"] + cpu["osmem"]) / max(1, final), 4),
        "cores_used": round(sum(cpu.values()) / wall, 2) if wall else None,
        "stage_cpu_s_per_article": {k: round(v / max(1, final), 4) for k, v in stage_cpu(run["stdout"]).items()},
        "peak_rss_mb": [{"group": g, "process": label, "mb": round(rss / 2**20)} for g, label, rss in procs[:12]],
        "worker_peak_rss_mb": round(max((rss for _, rss in workers), default=0) / 2**20),
    }
    if ceiling:
        out["ceiling"] = ceiling
        out["ratio_to_ceiling"] = round(rate / ceiling["ceiling"], 3)
        out["ratio_to_unique_ceiling"] = round(rate / ceiling["unique_ceiling"], 3)
        out["steady_ratio_to_ceiling"] = round(out["steady_articles_per_s"] / ceiling["ceiling"], 3)
    return out


# ---------------------------------------------------------------- ceiling


def compute_terms(root: Path, items: list[Any], pages: list[Any], sample: int) -> dict[str, float]:
    """The ceiling's extract and NER terms, CPU s per article, on ``sample`` corpus pages."""
    import gzip

    import trafilatura

    from ingest.enrich import load_ner_pipeline

    step = max(1, len(items) // sample)
    chosen = items[::step][:sample]
    htmls = [(gzip.decompress((root / "a" / f"{it.index}.html.gz").read_bytes()), pages[it.page].url,
              pages[it.page].lang) for it in chosen]
    t = time.process_time()
    found = [trafilatura.bare_extraction(h, url=u, with_metadata=True) for h, u, _ in htmls]
    results = [r.as_dict() if hasattr(r, "as_dict") else (r or {}) for r in found]
    extract = (time.process_time() - t) / len(htmls)
    nlp = NlpSettings()
    ner_total = 0.0
    for lang, model in (("fr", nlp.model_fr), ("en", nlp.model_en)):
        texts = [f"{r.get('title') or ''}\n\n{r.get('text') or ''}" for r, (_, _, lg) in zip(results, htmls,
                                                                                            strict=True) if lg == lang]
        if not texts:
            continue
        model_nlp = load_ner_pipeline(model, lang)  # NER alone: what ingest runs (ner and what it listens to)
        t = time.process_time()
        for doc in model_nlp.pipe(texts, batch_size=nlp.batch_size):
            _ = doc.ents
        ner_total += time.process_time() - t
    return {"sample": len(htmls), "extract_s": extract, "ner_s": ner_total / len(htmls)}


def bulk_term(svc: dict[str, Any], sample: int) -> float:
    """The ceiling's index term: CPU s per article of ``streaming_bulk`` of the run's documents, osmem's included."""
    from elasticsearch import Elasticsearch, helpers

    from ingest.config import ElasticsearchSettings
    from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client

    es: Elasticsearch = build_es_client(ElasticsearchSettings(hosts=[svc["search_url"]], server_mode="serverless"))
    docs = [h["_source"] for h in es.search(index="news-e2e", size=sample, query={"match_all": {}})["hits"]["hits"]]
    if not docs:
        raise fail("the run indexed no document to re-index for the ceiling")
    settings = ElasticsearchSettings(hosts=[svc["search_url"]], server_mode="serverless",
                                     index_prefix=f"ceiling-{uuid.uuid4().hex[:6]}")
    sink = ElasticsearchSink(es, settings)
    sink.ensure_ready()
    actions = ({"_index": sink.write_alias, "_id": f"c{i}", "_source": d} for i, d in enumerate(docs))
    osmem = psutil.Process(svc["search"].pid)
    o0, t = sum(osmem.cpu_times()[:2]), time.process_time()
    for ok, _ in helpers.streaming_bulk(es, actions, chunk_size=pipeline_settings().batch_size):
        assert ok
    return (time.process_time() - t + sum(osmem.cpu_times()[:2]) - o0) / len(docs)


def ceiling_of(before: dict[str, float], after: dict[str, float], index: float, unique_share: float
               ) -> dict[str, Any]:
    """One run's ceiling: its extract and NER terms measured just before and just after it (the mean: this
    machine's speed drifts over an hour), its index term after it."""
    extract = (before["extract_s"] + after["extract_s"]) / 2
    ner = (before["ner_s"] + after["ner_s"]) / 2
    total = extract + ner + index
    unique = extract + ner * unique_share + index
    first, last = before["extract_s"] + before["ner_s"], after["extract_s"] + after["ner_s"]
    return {"sample": int(before["sample"]), "extract_s": round(extract, 4), "ner_s": round(ner, 4),
            "index_s": round(index, 4), "sum_s": round(total, 4), "cores": CORES, "ceiling": round(CORES / total, 2),
            "unique_share": unique_share, "unique_sum_s": round(unique, 4), "unique_ceiling": round(CORES / unique, 2),
            "before_s": round(first, 4), "after_s": round(last, 4), "drift": round(last / first - 1, 3)}


# ---------------------------------------------------------------- output


def checks(runs: list[dict[str, Any]]) -> list[str]:
    lines = []

    def line(ok: bool, text: str) -> None:
        lines.append(f"  [{'met' if ok else 'NOT met'}] {text}")

    for r in runs:
        tag = f"{r['path']} N={r['articles']}"
        if "ratio_to_ceiling" in r:
            goal = TARGETS["cli_ratio" if r["path"] == "cli" else "airflow_ratio"]
            line(r["ratio_to_ceiling"] >= goal, f"{tag}: {r['ratio_to_ceiling']:.3f} of the ceiling (>= {goal})")
            if r["path"] == "cli":
                line(r["ratio_to_ceiling"] > TARGETS["unique_ratio"],
                     f"{tag}: {r['ratio_to_ceiling']:.3f} of the ceiling for unique work, every article's work in "
                     f"full (reuse shows above 1; near-duplicates found: {r['near_duplicate_share']:.0%})")
                line(r["ratio_to_unique_ceiling"] > TARGETS["unique_ratio"],
                     f"{tag}: stricter, {r['ratio_to_unique_ceiling']:.2f} of the ceiling that counts NER for the "
                     "unique articles only (> 1)")
        line(r["worker_peak_rss_mb"] <= TARGETS["rss_gb"] * 1024,
             f"{tag}: worker peak RSS {r['worker_peak_rss_mb']} MB (<= {TARGETS['rss_gb'] * 1024:.0f})")
    for path in ("cli", "airflow", "celery"):
        mine = sorted((r for r in runs if r["path"] == path), key=lambda r: r["articles"])
        if len(mine) >= 2 and mine[0]["articles_per_s"]:
            a, b = mine[0], mine[-1]
            rate = b["articles_per_s"] / a["articles_per_s"] - 1
            mem = b["worker_peak_rss_mb"] / max(1, a["worker_peak_rss_mb"]) - 1
            line(abs(rate) <= TARGETS["flat"] and mem <= TARGETS["flat"],
                 f"{path}: N={a['articles']} -> {b['articles']}: articles/s {rate:+.1%}, peak RSS {mem:+.1%} "
                 f"(within ±{TARGETS['flat']:.0%})")
    return lines


def print_all(runs: list[dict[str, Any]]) -> None:
    for r in runs:
        if c := r.get("ceiling"):
            print(f"ceiling of {r['path']} N={r['articles']} ({c['sample']} pages, CPU s per article): extract "
                  f"{c['extract_s']:.4f} + NER {c['ner_s']:.4f} (mean of before the run {c['before_s']:.4f} and "
                  f"after {c['after_s']:.4f}: {c['drift']:+.0%}) + bulk index incl. osmem {c['index_s']:.4f} = "
                  f"{c['sum_s']:.4f} -> {c['cores']} cores / sum = {c['ceiling']:.1f} articles/s; NER counted for "
                  f"the unique share only ({c['unique_share']:.2f}): {c['unique_ceiling']:.1f} articles/s")
    print(f"{'path':8} {'N':>6} {'wall s':>8} {'art/s':>7} {'steady':>7} {'idx/s':>7} {'ratio':>6} {'uniq':>6} "
          f"{'cores':>5} {'cpu/art':>8} {'near-dup':>8} {'worker MB':>9}")
    for r in runs:
        print(f"{r['path']:8} {r['articles']:>6} {r['wall_s']:>8.1f} {r['articles_per_s']:>7.2f} "
              f"{r['steady_articles_per_s']:>7.2f} {r['indexed_per_s']:>7.2f} {r.get('ratio_to_ceiling', 0):>6.2f} "
              f"{r.get('ratio_to_unique_ceiling', 0):>6.2f} {r['cores_used'] or 0:>5.2f} "
              f"{r['cpu_s_per_article']:>8.4f} {r['near_duplicate_share']:>8.1%} {r['worker_peak_rss_mb']:>9}")
    for r in runs:
        print(f"-- {r['path']} N={r['articles']}: {r['command']}")
        print(f"   final {r['final']}/{r['articles']} (pending left {r['left_pending']}); steady rate (10-90% of the "
              f"stream) {r['steady_articles_per_s']}/s = {r.get('steady_ratio_to_ceiling', 0):.2f} of the ceiling")
        print(f"   CPU s {r['cpu_s']}; "
              f"dups queued after their original {r['dups_queued_after_original']:.0%}")
        stages = r["stage_cpu_s_per_article"]
        print("   CPU s per article by stage: " + (", ".join(f"{k} {v:.4f}" for k, v in stages.items())
                                                  or "(no `cpu seconds:` line printed)"))
        print("   counters: " + " ".join(f"{k}={v}" for k, v in r["counts"].items() if not k.startswith("poll/")))
        print("   peak RSS: " + ", ".join(f"{p['process']} {p['mb']} MB" for p in r["peak_rss_mb"][:6]))
    print("targets:")
    print("\n".join(checks(runs)))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", default="1000,10000", help="comma-separated corpus sizes")
    parser.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True, help="the ingest process path")
    parser.add_argument("--airflow", action=argparse.BooleanOptionalAction, default=True, help="the DAG path")
    parser.add_argument("--celery", type=int, default=0, metavar="N",
                        help="also the DAG path on Airflow's Celery executor with N workers (PostgreSQL, Redis broker)")
    parser.add_argument("--quick", action="store_true", help="300 articles, no Airflow")
    parser.add_argument("--sample", type=int, default=200, help="pages the ceiling is measured on")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the site answers each page this late (a real server's time to first byte; 0 on loopback)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--set", action="append", default=[], metavar="INGEST_X__Y=VALUE",
                        help="a setting for every ingest command and Airflow task of the run (repeatable)")
    args = parser.parse_args()
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("INGEST_"):
            parser.error(f"--set {item!r}: expected INGEST_SECTION__NAME=value")
        SETTINGS_SET[name] = value
    try:
        pipeline_settings()
    except ConfigError as e:
        parser.error(f"--set: {e}")
    sizes = [300] if args.quick else [int(x) for x in args.articles.split(",") if x.strip()]
    paths = (["cli"] if args.cli or args.quick else []) + (["airflow"] if args.airflow and not args.quick else []) \
        + (["celery"] if args.celery and not args.quick else [])
    if not paths:
        parser.error("nothing to measure: --no-cli and --no-airflow")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_e2e-") as tmp_name:
        tmp = Path(tmp_name)
        for n in sizes:
            root = tmp / f"site-{n}"
            root.mkdir()
            site, port = start_site(root, tmp, args.latency_ms)
            try:
                print(f"bench_e2e: N={n}: writing the corpus…", file=sys.stderr, flush=True)
                registry, items, pages = write_site(root, n, HOSTS, port)
                originals = {it.index: it.original for it in items if it.original is not None}
                unique_share = 1 - len(originals) / n
                for path in paths:
                    with services(tmp) as svc:
                        svc["site"] = site.pid
                        print(f"bench_e2e: N={n} {path}: polling…", file=sys.stderr, flush=True)
                        poll(svc, registry, n)
                        order = order_check(svc, originals)
                        print(f"bench_e2e: N={n} {path}: the ceiling's terms before the run…", file=sys.stderr,
                              flush=True)
                        before = compute_terms(root, items, pages, args.sample)
                        print(f"bench_e2e: N={n} {path}: processing…", file=sys.stderr, flush=True)
                        run = run_cli(svc, n) if path == "cli" else run_airflow(
                            svc, n, tmp, args.celery if path == "celery" else 0)
                        counts = counters(svc)
                        print(f"bench_e2e: N={n} {path}: the ceiling's terms after the run…", file=sys.stderr,
                              flush=True)
                        after = compute_terms(root, items, pages, args.sample)
                        ceiling = ceiling_of(before, after, bulk_term(svc, args.sample), unique_share)
                        runs.append(figures(path, n, run, counts, svc, ceiling, order))
                        print(f"bench_e2e: N={n} {path}: {runs[-1]['articles_per_s']} articles/s",
                              file=sys.stderr, flush=True)
            finally:
                stop(site)
    print(f"bench_e2e {started}  cores {CORES}  hosts {HOSTS}  {PER_FEED} articles per feed"
          + (f"  pages answered {args.latency_ms:g} ms late" if args.latency_ms else "")
          + "".join(f"  {k}={v}" for k, v in SETTINGS_SET.items()))
    print_all(runs)
    if args.json:
        print(json.dumps({"when": started, "latency_ms": args.latency_ms, "settings": SETTINGS_SET, "runs": runs,
                          "targets": TARGETS}))
    return 0


def start_site(root: Path, tmp: Path, latency_ms: float = 0.0) -> tuple[subprocess.Popen[str], int]:
    """The site server (its own process) on HOSTS loopback addresses, answering pages ``latency_ms`` late; its
    port."""
    args = [sys.executable, str(BENCH / "e2e_corpus.py"), "serve", "--root", str(root), "--hosts", str(HOSTS),
            "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        stop(proc)
        raise fail("the site server did not start")
    return proc, int(line.split()[1])


if __name__ == "__main__":
    sys.exit(main())
