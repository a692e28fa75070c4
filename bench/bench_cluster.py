"""The dedup and story state on a 3-master Redis Cluster beside one server, in the same run: lookup + insert time
and how the keys and memory spread over the masters.

    .venv/bin/python bench/bench_cluster.py [--articles 100000] [--probe 2000] [--json]

Both are private ``redis-server`` processes on loopback (default configuration; the cluster made with
``redis-cli --cluster create``, no replicas). Each is filled the way ``bench_dedup.py`` fills one server: the
pipeline's story script (``RedisStoryStore.queue_assign``) for ``--articles`` synthetic signatures over the 7 days of
the window, pipelined, then one exact-level mark per article (``RedisDedupStore.queue_commit``) and the same
number of queued entries (``RedisPendingQueue.enqueue``). Then ``--probe`` real texts are looked up and kept one
call at a time (a round trip each, as the pipeline does). Printed: per master, keys and ``used_memory`` above
its empty state; the time per lookup + insert on the cluster as a ratio of the single server's.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_dedup import FILL_BATCH, LAST_DAY, START, summary, synthetic, timed_assign, zipf_cumulative
from eval_dedup import FIXTURES, fundus_originals

from ingest.config import DedupSettings
from ingest.dedup import signature
from ingest.embedded.services import free_port, spawn_redis, spawn_redis_cluster
from ingest.eval.dedup_sets import records_of, semeval_pairs
from ingest.models import FeedEntry, Mark
from ingest.stores.redis import RedisDedupStore, RedisPendingQueue, RedisStoryStore, build_redis_client


def masters(client: Any, cluster: bool) -> list[Any]:
    """A plain client per master (the one server itself when not a cluster)."""
    import redis

    if not cluster:
        return [client]
    return [redis.Redis(host=n.host, port=n.port, decode_responses=True) for n in client.get_primaries()]


def fill(url: str, cluster: bool, n: int, probes: Sequence[Any], settings: DedupSettings, seed: int
         ) -> dict[str, Any]:
    client = build_redis_client(url, cluster)
    nodes = masters(client, cluster)
    base = [int(m.info("memory")["used_memory"]) for m in nodes]
    rng, cum = random.Random(seed), zipf_cumulative()
    prefix = "bench"
    stories, exact = RedisStoryStore(client, prefix, settings), RedisDedupStore(client, prefix, settings)
    queue = RedisPendingQueue(client, prefix, "workers", 600)
    t0 = time.perf_counter()
    for start in range(0, n, FILL_BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + FILL_BATCH)):
            stories.queue_assign(pipe, f"{i:020x}", synthetic(rng, cum, settings), START + timedelta(days=i * 7 // n))
            exact.queue_commit(pipe, f"{i:020x}", Mark(f"{rng.getrandbits(64):016x}", 1795000000 + i,
                                                       1795100000 + i, f"{i - i % 3:020x}"), LAST_DAY)
        pipe.execute()
        queue.enqueue([(f"q{i:020x}", FeedEntry(feed_id="f", feed_name="F", url=f"https://example.org/{i}"))
                       for i in range(start, min(n, start + FILL_BATCH))])
    fill_s = time.perf_counter() - t0
    timed = summary(timed_assign(stories, [(f"{i:020x}dd", probes[i % len(probes)]) for i in range(len(probes))],
                                 insert=True))
    per_master = [{"port": int(m.connection_pool.connection_kwargs["port"]), "keys": int(m.dbsize()),
                   "memory_mb": (int(m.info("memory")["used_memory"]) - b) / 2**20} for m, b in zip(nodes, base,
                                                                                                    strict=True)]
    return {"fill_s": fill_s, "lookup_insert": timed, "masters": per_master}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--probe", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = DedupSettings()
    texts = [o for o, _ in fundus_originals()] + records_of(semeval_pairs(FIXTURES / "dedup" /
                                                                         "semeval2022_task8_dev.jsonl"))
    probes = [signature(t.text, t.lang, settings) for t in texts][: args.probe]
    probes = [probes[i % len(probes)] for i in range(args.probe)]
    with tempfile.TemporaryDirectory() as tmp:
        single_port, ports = free_port(), [free_port() for _ in range(3)]
        procs = [spawn_redis(single_port, Path(tmp) / "single"), *spawn_redis_cluster(ports, Path(tmp) / "cluster")]
        try:
            one = fill(f"redis://127.0.0.1:{single_port}/0", False, args.articles, probes, settings, 1)
            many = fill(f"redis://127.0.0.1:{ports[0]}/0", True, args.articles, probes, settings, 1)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    ratio = many["lookup_insert"]["mean_ms"] / one["lookup_insert"]["mean_ms"]
    report = {"articles": args.articles, "single": one, "cluster": many, "cluster_to_single_lookup_insert": ratio}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name, r in (("one server", one), ("3-master cluster", many)):
        li = r["lookup_insert"]
        print(f"{name}: fill {args.articles / r['fill_s']:,.0f} articles/s; lookup+insert (real texts, kept) mean "
              f"{li['mean_ms']:.3f} ms p50 {li['p50_ms']:.3f} p95 {li['p95_ms']:.3f}")
        for m in r["masters"]:
            print(f"   master :{m['port']}: {m['keys']:,} keys, {m['memory_mb']:.1f} MB "
                  f"({m['memory_mb'] * 2**20 / args.articles:.0f} B per article)")
    print(f"lookup+insert on the cluster: ×{ratio:.2f} of one server's (same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
