"""Dedup state at scale: lookup + insert time and Redis memory per article as the store grows to 1,000,000.

    .venv/bin/python bench/bench_dedup.py [--articles 1000000] [--probe 2000] [--redis-url redis://…] [--json]

A private ``redis-server`` (default configuration) on a free loopback port unless ``--redis-url``. The store is
filled with ``--articles`` synthetic signatures spread over the 7 days of the window (24 random fingerprints;
32 keywords drawn from a Zipf-distributed vocabulary of 200,000 stems, so common keywords have full posting
lists and every lookup compares the maximum number of candidates; each of one of 2,000 sites), through
``RedisStoryStore.queue_assign`` — the pipeline's script, lookup and insert — pipelined 1,000 at a time. At each
checkpoint:

- memory per article: (``used_memory`` − ``used_memory`` before the fill) / articles stored, and per article
  added since the last checkpoint (the buckets, a fixed cost sized by ``buckets_per_day``, are then all there);
- lookup, real texts: ``assign(insert=False)`` one call at a time (a round trip each, as the pipeline does) for
  ``--probe`` real signatures (the fundus golden bodies and SemEval texts, cycled) on the last day;
- lookup + insert, synthetic: ``--probe`` more synthetic articles assigned and kept one call at a time, the
  worst case (they join the fill);
- the fill's own rate (pipelined, so without the round trips).

At the end, lookup + insert of the real probes (kept, on the last day), and the exact level: one mark per
article stored (``RedisDedupStore.queue_commit``, pipelined) and its memory per URL.

Targets (issue): lookup + insert under 2 ms per article at 1,000,000 stored articles; Redis memory under 1 KB
per article. The ratio of the time at each checkpoint to the time at the first shows whether the lookup grows
with the number of stored articles (it should not). The machine may be shared: times are wall-clock.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eval_dedup import FIXTURES, fundus_originals, redis_client

from ingest.config import DedupSettings
from ingest.dedup import signature
from ingest.eval.dedup_sets import records_of, semeval_pairs
from ingest.models import Mark, Signature
from ingest.stores.redis import RedisDedupStore, RedisStoryStore

START = datetime(2026, 11, 17, 12, tzinfo=UTC)
LAST_DAY = START + timedelta(days=6, hours=23)
VOCABULARY = 200_000
FILL_BATCH = 1000
SITES = 2000  # a synthetic article's site is one of these (two articles of one site compare with the penalty)


def zipf_cumulative(size: int = VOCABULARY) -> list[float]:
    return list(itertools.accumulate(1 / rank for rank in range(1, size + 1)))


def synthetic(rng: random.Random, cum: Sequence[float], settings: DedupSettings) -> Signature:
    """Random fingerprints; the first ``keywords`` distinct stems of Zipf draws, with random weights."""
    drawn: dict[int, None] = {}
    while len(drawn) < settings.keywords:
        drawn.update(dict.fromkeys(rng.choices(range(len(cum)), cum_weights=cum, k=2 * settings.keywords)))
    stems = list(drawn)[: settings.keywords]
    weights = rng.choices(range(20, 161), k=len(stems))
    keywords = sorted(((s * 2654435761 % 2**32, w) for s, w in zip(stems, weights, strict=True)), key=lambda x: -x[1])
    n = settings.max_fingerprints
    return Signature(struct.unpack(f">{n}I", rng.randbytes(4 * n)), tuple(keywords), site=rng.randint(1, SITES))


def timed_assign(store: RedisStoryStore, articles: Sequence[tuple[str, Signature]], insert: bool) -> list[float]:
    """Seconds each ``assign`` took, one call (one round trip) per article on the last day, sorted."""
    times = []
    for article_id, sig in articles:
        t0 = time.perf_counter()
        store.assign(article_id, sig, LAST_DAY, insert=insert)
        times.append(time.perf_counter() - t0)
    return sorted(times)


def summary(times: list[float]) -> dict[str, float]:
    return {"mean_ms": 1000 * statistics.fmean(times), "p50_ms": 1000 * times[len(times) // 2],
            "p95_ms": 1000 * times[int(len(times) * 0.95)]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--probe", type=int, default=2000)
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = DedupSettings()
    rng = random.Random(7)
    cum = zipf_cumulative()
    texts = [o for o, _ in fundus_originals()] + records_of(semeval_pairs(FIXTURES / "dedup" /
                                                                         "semeval2022_task8_dev.jsonl"))
    probes = [signature(t.text, t.lang, settings, url=t.url) for t in texts]
    checkpoints = sorted({c for c in (10_000, 100_000, 250_000, 500_000, args.articles) if c <= args.articles})
    rows: list[dict[str, Any]] = []
    with redis_client(args.redis_url) as client:
        prefix = f"bench-dedup-{rng.getrandbits(32):08x}"
        store = RedisStoryStore(client, prefix, settings)
        base = int(client.info("memory")["used_memory"])
        filled = kept = 0  # articles of the fill; synthetic articles kept one at a time by the probes
        fill_seconds = 0.0
        for checkpoint in checkpoints:
            t0 = time.perf_counter()
            while filled < checkpoint:
                pipe = client.pipeline(transaction=False)
                for _ in range(min(FILL_BATCH, checkpoint - filled)):
                    now = START + timedelta(days=filled * 7 // args.articles)
                    store.queue_assign(pipe, f"{filled:020x}", synthetic(rng, cum, settings), now)
                    filled += 1
                pipe.execute()
            fill_seconds += time.perf_counter() - t0
            stored = filled + kept
            memory = int(client.info("memory")["used_memory"]) - base
            lookup = timed_assign(store, [(f"{i:020x}ff", probes[i % len(probes)]) for i in range(args.probe)],
                                  insert=False)
            fresh = [(f"{stored + i:020x}ee", synthetic(rng, cum, settings)) for i in range(args.probe)]
            inserted = timed_assign(store, fresh, insert=True)
            kept += args.probe
            previous = rows[-1] if rows else {"stored": 0, "memory_bytes": 0}
            rows.append({
                "stored": stored,
                "memory_bytes": memory,
                "bytes_per_article": memory / stored,
                # what each article added since the last checkpoint: the cost once the buckets are all there
                "marginal_bytes_per_article": (memory - previous["memory_bytes"]) / (stored - previous["stored"]),
                "lookup_real": summary(lookup),
                "lookup_insert_synthetic": summary(inserted),
                "fill_per_second": filled / fill_seconds,
                "keys": int(client.dbsize()),
            })
            if not args.json:
                r, first = rows[-1], rows[0]
                real, syn = r["lookup_real"], r["lookup_insert_synthetic"]
                print(f"{r['stored']:>9,} stored  memory {r['bytes_per_article']:.0f} B/article "
                      f"({r['marginal_bytes_per_article']:.0f} B each since the last checkpoint)  "
                      f"lookup (real texts) mean {real['mean_ms']:.3f} ms p50 {real['p50_ms']:.3f} "
                      f"p95 {real['p95_ms']:.3f} (×{real['mean_ms'] / first['lookup_real']['mean_ms']:.2f} of the "
                      f"first)  lookup+insert (synthetic) mean {syn['mean_ms']:.3f} p95 {syn['p95_ms']:.3f}  "
                      f"fill {r['fill_per_second']:,.0f}/s  keys {r['keys']:,}", flush=True)
        # The pipeline's case: real texts, each looked up and kept, one round trip each, on the last day.
        real_insert = summary(timed_assign(store, [(f"{i:020x}dd", probes[i % len(probes)])
                                                   for i in range(args.probe)], insert=True))
        stored = filled + kept + args.probe
        # The exact level: a mark per article (text hash, feed date, story), as the pipeline commits them.
        exact = RedisDedupStore(client, prefix, settings)
        before = int(client.info("memory")["used_memory"])
        for start in range(0, stored, FILL_BATCH):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(stored, start + FILL_BATCH)):
                story = f"{n - n % 3:020x}"  # two articles in three join an earlier one's story
                mark = Mark(f"{rng.getrandbits(64):016x}", 1795000000 + n, 1795100000 + n, story)
                exact.queue_commit(pipe, f"{n:020x}", mark, LAST_DAY)
            pipe.execute()
        exact_bytes = (int(client.info("memory")["used_memory"]) - before) / stored
        encodings: dict[str, int] = {}
        for key in list(client.scan_iter(f"{prefix}:*:f:*", count=1000))[:200]:
            enc = str(client.object("encoding", key))
            encodings[enc] = encodings.get(enc, 0) + 1
    report = {"checkpoints": rows, "lookup_insert_real_at_end": real_insert, "stored_at_end": stored,
              "exact_marks_bytes_per_url": exact_bytes, "bucket_encodings_sample": encodings,
              "settings": settings.model_dump()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"lookup+insert (real texts, kept) at {stored:,} stored: mean {real_insert['mean_ms']:.3f} ms "
              f"p50 {real_insert['p50_ms']:.3f} p95 {real_insert['p95_ms']:.3f} (target < 2 ms)")
        print(f"exact level: {exact_bytes:.0f} B per URL remembered ({stored:,} marks); "
              f"bucket encodings (sample of 200): {encodings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
