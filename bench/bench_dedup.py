"""Dedup state at scale: lookup + insert time and Redis memory per article as the store grows to 1,000,000.

    .venv/bin/python bench/bench_dedup.py [--articles 1000000] [--probe 2000] [--redis-url redis://…] [--json]

A private ``redis-server`` (default configuration) on a free loopback port unless ``--redis-url``. The store is
filled with ``--articles`` synthetic signatures spread over the 7 days of the window (24 random fingerprints;
32 keywords drawn from a Zipf-distributed vocabulary of 200,000 stems, so common keywords have full posting
lists and every lookup compares the maximum number of candidates), through ``RedisStoryStore.assign`` — the
pipeline's script — pipelined 500 at a time. At each checkpoint it times ``assign`` one call at a time (a round
trip each, as the pipeline does) for ``--probe`` real signatures (the fundus golden bodies and SemEval texts,
cycled; kept with ``insert=False`` so the fill stays as it is), and reads ``used_memory`` from ``INFO``.

Targets (issue): lookup + insert under 2 ms per article at 1,000,000 stored articles; Redis memory under 1 KB
per article. The ratio of the time at each checkpoint to the time at the first shows whether the lookup grows
with the number of stored articles (it should not). Memory per article = (used_memory − used_memory before the
fill) / articles stored.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from eval_dedup import FIXTURES, fundus_originals, redis_client

from ingest.config import DedupSettings
from ingest.dedup import Signature, signature
from ingest.dedup_quality import records_of, semeval_pairs
from ingest.stores.redis import RedisStoryStore

START = datetime(2026, 11, 17, 12, tzinfo=UTC)
VOCABULARY = 200_000


def synthetic(rng: random.Random, weights: Sequence[float], settings: DedupSettings) -> Signature:
    stems = set()
    while len(stems) < settings.keywords:
        stems.add(rng.choices(range(VOCABULARY), cum_weights=weights)[0])
    keywords = tuple(sorted(((s * 2654435761 % 2**32, rng.randint(20, 160)) for s in stems), key=lambda x: -x[1]))
    return Signature(tuple(rng.getrandbits(32) for _ in range(settings.max_fingerprints)), keywords)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--probe", type=int, default=2000)
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = DedupSettings()
    rng = random.Random(7)
    cum, total = [], 0.0
    for rank in range(1, VOCABULARY + 1):
        total += 1 / rank
        cum.append(total)
    texts = [o for o, _ in fundus_originals()] + records_of(semeval_pairs(FIXTURES / "dedup" /
                                                                         "semeval2022_task8_dev.jsonl"))
    probes = [signature(t.text, t.lang, settings) for t in texts]
    checkpoints = sorted({c for c in (10_000, 100_000, 250_000, 500_000, args.articles) if c <= args.articles})
    rows = []
    with redis_client(args.redis_url) as client:
        prefix = f"bench-dedup-{rng.getrandbits(32):08x}"
        store = RedisStoryStore(client, prefix, settings)
        base = int(client.info("memory")["used_memory"])
        stored = 0
        started = time.perf_counter()
        for checkpoint in checkpoints:
            while stored < checkpoint:
                pipe = client.pipeline(transaction=False)
                for _ in range(min(500, checkpoint - stored)):
                    now = START + timedelta(days=stored * 7 // args.articles)
                    store.queue_assign(pipe, f"{stored:020x}", synthetic(rng, cum, settings), now)
                    stored += 1
                pipe.execute()
            memory = int(client.info("memory")["used_memory"]) - base
            now = START + timedelta(days=6, hours=23)
            times = []
            for i in range(args.probe):
                t0 = time.perf_counter()
                store.assign(f"probe{i}", probes[i % len(probes)], now, insert=False)
                times.append(time.perf_counter() - t0)
            times.sort()
            rows.append({
                "stored": stored,
                "mean_ms": 1000 * statistics.fmean(times),
                "p50_ms": 1000 * times[len(times) // 2],
                "p95_ms": 1000 * times[int(len(times) * 0.95)],
                "bytes_per_article": memory / stored,
                "keys": int(client.dbsize()),
                "fill_seconds": time.perf_counter() - started,
            })
            if not args.json:
                r = rows[-1]
                print(f"{r['stored']:>9,} stored  assign mean {r['mean_ms']:.3f} ms  p50 {r['p50_ms']:.3f}  "
                      f"p95 {r['p95_ms']:.3f}  (×{r['mean_ms'] / rows[0]['mean_ms']:.2f} of the first)  "
                      f"memory {r['bytes_per_article']:.0f} B/article  keys {r['keys']:,}  "
                      f"[{r['fill_seconds']:.0f} s]", flush=True)
        # Insert cost too: the probes kept, on the last day.
        t0 = time.perf_counter()
        for i in range(args.probe):
            store.assign(f"kept{i}", probes[i % len(probes)], START + timedelta(days=6, hours=23))
        insert_ms = 1000 * (time.perf_counter() - t0) / args.probe
        encodings = {}
        for key in list(client.scan_iter(f"{prefix}:*:f:*", count=1000))[:200]:
            enc = client.object("encoding", key)
            encodings[enc] = encodings.get(enc, 0) + 1
    report = {"checkpoints": rows, "assign_with_insert_ms": insert_ms, "bucket_encodings_sample": encodings,
              "settings": settings.model_dump()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"assign with insert at {stored:,} stored: mean {insert_ms:.3f} ms per article (target < 2 ms); "
              f"bucket encodings (sample of 200): {encodings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
