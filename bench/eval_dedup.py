"""Dedup quality: story pairs on SemEval-2022 Task 8, near-verbatim copies of real article texts.

    .venv/bin/python bench/eval_dedup.py [--redis-url redis://…] [--json]

Runs ``ingest.dedup.cluster`` — the pipeline's dedup code and the thresholds in settings, nothing tuned here —
against a real Redis (a private ``redis-server`` on a free loopback port unless ``--redis-url``; each set under
its own key prefix, deleted afterwards).

- stories: ``fixtures/dedup/semeval2022_task8_dev.jsonl``, each text once in file order; a pair is the same
  story when ``labels_official.Overall`` ≤ 2. Pair precision/recall/F1 of "same story_id"; the baseline is
  TF-IDF cosine with its best threshold on the same file (target: ours ≥ 0.85, baseline 0.79);
- copies: the 55 fundus golden bodies, then four copies of each (another byline and boilerplate, a cut after
  the fourth paragraph, a corrected typo, a changed headline printed above the text). ``duplicate_of``
  precision and recall (target ≥ 0.99 / ≥ 0.95), and false duplicates between different articles: among the
  originals, and between the two articles of each SemEval same-story pair (different outlets, one story).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from ingest.config import DedupSettings
from ingest.dedup import ClusterInput, ClusterResult, cluster
from ingest.embedded.services import free_port, spawn_redis
from ingest.eval.dedup_sets import (
    Copy,
    best_threshold,
    make_copies,
    records_of,
    semeval_pairs,
    story_scores,
    tfidf_cosines,
)
from ingest.eval.extraction import fundus_pages
from ingest.stores.redis import RedisDedupStore, RedisStoryStore, delete_namespace

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


@contextmanager
def redis_client(url: str | None) -> Iterator[redis.Redis]:
    if url:
        yield redis.Redis.from_url(url, decode_responses=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = spawn_redis(port, Path(tmp))
        try:
            yield redis.Redis(port=port, decode_responses=True)
        finally:
            proc.terminate()
            proc.wait()


def run_cluster(client: redis.Redis, records: Sequence[ClusterInput], settings: DedupSettings) -> list[ClusterResult]:
    prefix = f"eval-dedup-{uuid.uuid4().hex[:8]}"
    try:
        return list(cluster(records, RedisDedupStore(client, prefix), RedisStoryStore(client, prefix, settings),
                            settings, NOW))
    finally:
        delete_namespace(client, prefix)


def fundus_originals() -> list[tuple[ClusterInput, str]]:
    pages = fundus_pages(FIXTURES / "pages" / "fundus")
    return [(ClusterInput(p.name, p.body or "", lang=p.lang), p.title or "") for p in pages if p.body]


def copies_eval(client: redis.Redis, settings: DedupSettings) -> dict[str, Any]:
    originals = fundus_originals()
    copies: list[Copy] = [c for original, title in originals for c in make_copies(original, title)]
    results = {r.id: r for r in run_cluster(client, [o for o, _ in originals] + [c.record for c in copies],
                                             settings)}
    source = {o.id: o.id for o, _ in originals} | {c.record.id: c.original for c in copies}
    flagged = [r for r in results.values() if r.duplicate_of]
    right = [r for r in flagged if source[r.duplicate_of or ""] == source[r.id]]
    missed = [c for c in copies if not results[c.record.id].duplicate_of]
    false_originals = [o.id for o, _ in originals if results[o.id].duplicate_of]
    return {
        "originals": len(originals),
        "copies": len(copies),
        "flagged": len(flagged),
        "precision": len(right) / len(flagged) if flagged else 0.0,
        "recall": sum(1 for c in copies if results[c.record.id].duplicate_of
                      and source[results[c.record.id].duplicate_of or ""] == c.original) / len(copies),
        "missed_by_kind": dict(Counter(c.how for c in missed)),
        "false_duplicates_among_originals": false_originals,
        "exact_level": sum(1 for r in results.values() if r.kind == "exact"),
    }


def stories_eval(client: redis.Redis, settings: DedupSettings) -> dict[str, Any]:
    pairs = semeval_pairs(FIXTURES / "dedup" / "semeval2022_task8_dev.jsonl")
    results = run_cluster(client, records_of(pairs), settings)
    by_id = {r.id: r for r in results}
    ours = story_scores(pairs, results)
    baseline = best_threshold(tfidf_cosines(pairs), [p.same_story for p in pairs])
    same_story_dups = [
        p.id for p in pairs
        if p.same_story and p.a.id != p.b.id
        and (by_id[p.a.id].duplicate_of == p.b.id or by_id[p.b.id].duplicate_of == p.a.id)
    ]
    return {
        "pairs": len(pairs),
        "same_story_pairs": sum(p.same_story for p in pairs),
        "texts": len(results),
        "ours": vars(ours),
        "tfidf_best_threshold": vars(baseline),
        "story_similarity_setting": settings.story_similarity,
        "duplicate_of_between_same_story_pairs": same_story_dups,
        "kinds": dict(Counter(r.kind for r in results)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = DedupSettings()
    with redis_client(args.redis_url) as client:
        report = {"stories": stories_eval(client, settings), "copies": copies_eval(client, settings)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    s, c = report["stories"], report["copies"]
    print(f"stories (SemEval-2022 Task 8 dev, {s['pairs']} pairs, {s['same_story_pairs']} same story, "
          f"{s['texts']} texts)")
    print(f"  ours, same story_id (story_similarity={s['story_similarity_setting']}): "
          f"P {s['ours']['precision']:.3f}  R {s['ours']['recall']:.3f}  F1 {s['ours']['f1']:.3f}   target ≥ 0.85")
    b = s["tfidf_best_threshold"]
    print(f"  TF-IDF cosine, best threshold {b['threshold']:.3f} on this file: P {b['precision']:.3f}  "
          f"R {b['recall']:.3f}  F1 {b['f1']:.3f}")
    print(f"  kinds {s['kinds']}; duplicate_of between the two articles of a same-story pair: "
          f"{len(s['duplicate_of_between_same_story_pairs'])}")
    print(f"copies ({c['originals']} fundus bodies, {c['copies']} copies)")
    print(f"  duplicate_of precision {c['precision']:.3f} (target ≥ 0.99)  recall {c['recall']:.3f} (target ≥ 0.95)"
          f"  flagged {c['flagged']}  exact-level {c['exact_level']}")
    print(f"  missed by kind {c['missed_by_kind']}; false duplicates among originals "
          f"{len(c['false_duplicates_among_originals'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
