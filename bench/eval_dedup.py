"""Dedup quality: story pairs on SemEval-2022 Task 8, near-verbatim copies of real article texts.

    .venv/bin/python bench/eval_dedup.py [--folds] [--redis-url redis://…] [--json]

Runs ``ingest.dedup.cluster`` — the pipeline's dedup code and the thresholds in settings, nothing tuned here —
against a real Redis (a private ``redis-server`` on a free loopback port unless ``--redis-url``; each set under
its own key prefix, deleted afterwards).

- stories: ``fixtures/dedup/semeval2022_task8_dev.jsonl``, each text once in file order; a pair is the same
  story when ``labels_official.Overall`` ≤ 2. Pair precision/recall/F1 of "same story_id"; the baseline is
  TF-IDF cosine with its best threshold on the same file (target: ours ≥ 0.85, baseline 0.79);
- ``--folds``: the honest figure. Both dev files (``semeval2022_task8_dev.jsonl``: en, de, es, fr;
  ``…_dev_more.jsonl``: ar, pl, tr and German–English pairs), split in two halves by a hash of the pair id;
  ``story_similarity`` and ``same_site_penalty`` fitted on one half, pair F1 scored on the other, both ways,
  per language and across languages (targets: same-language ≥ 0.82, each language ≥ 0.75, cross-language
  ≥ 0.70). Each text comes with its link (its site) and the date the link carries, if any;
- unrelated: the 55 fundus articles (other outlets, other years) must each stay in a story of their own, with
  their publication dates (a story is an event: ``story_days``) and, for information, without;
- copies: the 55 fundus golden bodies, then four copies of each (another byline and boilerplate, a cut after
  the fourth paragraph, a corrected typo, a changed headline printed above the text). ``duplicate_of``
  precision and recall (target ≥ 0.99 / ≥ 0.95), and false duplicates between different articles: among the
  originals, and between the two articles of each SemEval same-story pair (different outlets, one story).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import redis

from ingest.config import DedupSettings
from ingest.dedup import ClusterInput, ClusterResult, cluster
from ingest.embedded.services import free_port, spawn_redis
from ingest.eval.dedup_sets import (
    Copy,
    Pair,
    PairScores,
    best_threshold,
    make_copies,
    pair_scores,
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


DEV_FILES = ("semeval2022_task8_dev.jsonl", "semeval2022_task8_dev_more.jsonl")
GRID = tuple(round(0.12 + 0.01 * i, 2) for i in range(15))
PENALTIES = (0.0, 0.05, 0.1, 0.15)


def _half(pair: Pair) -> int:
    return int(hashlib.sha256(pair.id.encode()).hexdigest(), 16) % 2


def _by_group(pairs: Sequence[Pair], story: dict[str, str]) -> dict[str, PairScores]:
    """Pair scores of "same story_id" per language (same-language pairs), for all same-language pairs
    (``same``) and for pairs in two languages (``cross``)."""
    groups: dict[str, list[Pair]] = {}
    for p in pairs:
        key = p.a.lang if p.a.lang == p.b.lang else "cross"
        groups.setdefault(key or "?", []).append(p)
        if key != "cross":
            groups.setdefault("same", []).append(p)
    return {k: pair_scores([story[p.a.id] == story[p.b.id] for p in g], [p.same_story for p in g])
            for k, g in groups.items()}


def folds_eval(client: redis.Redis, settings: DedupSettings) -> dict[str, Any]:
    """Honest figures: the dev pairs of both files split in two halves by a hash of the pair id; the story
    threshold and the same-site penalty fitted on one half (best same-language pair F1 over GRID × PENALTIES)
    and scored on the other, both ways. Each half's texts go through the pipeline's own clustering in Redis,
    file by file, in file order."""
    files = [[replace(p, a=replace(p.a, id=f"{n}{p.a.id}"), b=replace(p.b, id=f"{n}{p.b.id}"))
              for p in semeval_pairs(FIXTURES / "dedup" / name)] for n, name in enumerate(DEV_FILES)]
    scored: dict[tuple[int, float, float], dict[str, PairScores]] = {}
    for half in (0, 1):
        parts = [[p for p in pairs if _half(p) == half] for pairs in files]
        for threshold in GRID:
            for penalty in PENALTIES:
                fitted = settings.model_copy(update={"story_similarity": threshold, "same_site_penalty": penalty})
                story: dict[str, str] = {}
                for part in parts:
                    story |= {r.id: r.story_id for r in run_cluster(client, records_of(part), fitted)}
                scored[(half, threshold, penalty)] = _by_group([p for part in parts for p in part], story)
    folds = []
    for fit in (0, 1):
        _, threshold, penalty = max((k for k in scored if k[0] == fit),
                                    key=lambda k: (scored[k]["same"].f1, -k[1], k[2]))
        folds.append({"fitted_on": fit, "threshold": threshold, "penalty": penalty,
                      "held_out": {k: vars(v) for k, v in sorted(scored[(1 - fit, threshold, penalty)].items())}})
    groups = sorted({k for f in folds for k in f["held_out"]})
    mean = {k: sum(f["held_out"][k]["f1"] for f in folds if k in f["held_out"]) / 2 for k in groups}
    group_of = [p.a.lang if p.a.lang == p.b.lang else "cross" for pairs in files for p in pairs]
    pairs_per_group = {k: group_of.count(k) for k in groups} | {"same": sum(g != "cross" for g in group_of)}
    return {"folds": folds, "held_out_f1_mean": mean, "pairs": pairs_per_group,
            "setting": settings.story_similarity, "penalty_setting": settings.same_site_penalty}


def unrelated_eval(client: redis.Redis, settings: DedupSettings) -> dict[str, Any]:
    """The 55 fundus articles (different outlets and years, no two on one event): how many join another's
    story, with their publication dates (as the pipeline has them) and without."""
    pages = [p for p in fundus_pages(FIXTURES / "pages" / "fundus") if p.body]
    dated = [ClusterInput(p.name, p.body or "", lang=p.lang,
                          published=datetime.combine(p.published, time(12), tzinfo=UTC) if p.published else None)
             for p in pages]
    out = {}
    for label, records in (("with_dates", dated), ("without_dates", [replace(r, published=None) for r in dated])):
        results = run_cluster(client, records, settings)
        out[label] = len(records) - len({r.story_id for r in results})
    return {"articles": len(pages), "joined": out}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--folds", action="store_true",
                        help="also fit the story threshold and the same-site penalty on one half of both dev "
                             "files and score the other (about 5 minutes)")
    args = parser.parse_args(argv)
    settings = DedupSettings()
    with redis_client(args.redis_url) as client:
        report = {"stories": stories_eval(client, settings), "copies": copies_eval(client, settings),
                  "unrelated": unrelated_eval(client, settings)}
        if args.folds:
            report["folds"] = folds_eval(client, settings)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if "folds" in report:
        f = report["folds"]
        print(f"stories, both dev files, threshold and same-site penalty fitted on one half of the pairs and "
              f"scored on the other (settings {f['setting']}, {f['penalty_setting']}):")
        for fold in f["folds"]:
            ho = fold["held_out"]
            print(f"  fitted on half {fold['fitted_on']}: threshold {fold['threshold']}, penalty {fold['penalty']}; "
                  f"held-out F1 "
                  + "  ".join(f"{k} {v['f1']:.3f}" for k, v in ho.items()))
        print("  mean held-out F1 (targets: same ≥ 0.82, each language ≥ 0.75, cross ≥ 0.70): "
              + "  ".join(f"{k} {v:.3f} ({f['pairs'].get(k, '')})" for k, v in f["held_out_f1_mean"].items()))
    u = report["unrelated"]
    print(f"unrelated articles ({u['articles']} fundus bodies) joined to another's story: "
          f"{u['joined']['with_dates']} with their publication dates, {u['joined']['without_dates']} without "
          f"(target 0)")
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
