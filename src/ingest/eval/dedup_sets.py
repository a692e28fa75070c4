"""Evaluation sets for the dedup stage, shared by the CI quality gate and ``bench/eval_dedup.py``.

- SemEval-2022 Task 8 pairs (``fixtures/dedup``): two articles are the same story when the annotators'
  ``Overall`` rating is at most 2 (1 = same story … 4 = unrelated). Each text comes with its link, as the
  pipeline has an article's URL, and the publication date the link carries (``/2020/03/17/``,
  ``cdate=17032020``: what htmldate finds in a URL, the least the pipeline's extraction knows of a page's date);
- near-verbatim copies of real article texts (the fundus golden bodies), made the ways a syndicating site
  makes them: another byline and boilerplate, a cut after the fourth paragraph, a corrected typo, a changed
  headline printed above the text.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.dedup import ClusterInput, ClusterResult, cosine, normalise_text, stop_words

SAME_STORY_MAX_OVERALL = 2.0


@dataclass(frozen=True)
class Pair:
    id: str
    a: ClusterInput
    b: ClusterInput
    overall: float

    @property
    def same_story(self) -> bool:
        return self.overall <= SAME_STORY_MAX_OVERALL


def url_date(url: str) -> datetime | None:
    """The publication date a URL carries, as htmldate reads it (noon UTC), or None."""
    from htmldate.extractors import extract_url_date
    from htmldate.utils import Extractor

    found = extract_url_date(url, Extractor(False, datetime(2100, 1, 1), datetime(1995, 1, 1), False, "%Y-%m-%d"))
    return datetime.strptime(found, "%Y-%m-%d").replace(hour=12, tzinfo=UTC) if found else None


def semeval_pairs(path: Path) -> list[Pair]:
    """The pairs of a SemEval-2022 Task 8 JSON lines file; a text met twice is one record."""
    pairs = []
    ids: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        sides = []
        for n in ("1", "2"):
            text, url = row[f"text{n}"], row.get(f"link{n}") or None
            record_id = ids.setdefault(text, f"t{len(ids)}")
            sides.append(ClusterInput(record_id, text, lang=row[f"lang{n}"], url=url,
                                      published=url_date(url) if url else None))
        pairs.append(Pair(row["pair_id"], sides[0], sides[1], float(row["labels_official"]["Overall"])))
    return pairs


def records_of(pairs: Iterable[Pair]) -> list[ClusterInput]:
    """Each text once, in file order."""
    seen: dict[str, ClusterInput] = {}
    for pair in pairs:
        for record in (pair.a, pair.b):
            seen.setdefault(record.id, record)
    return list(seen.values())


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    f1: float
    threshold: float | None = None


def pair_scores(predicted: Sequence[bool], gold: Sequence[bool], threshold: float | None = None) -> PairScores:
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predicted, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(precision, recall, f1, threshold)


def story_scores(pairs: Sequence[Pair], results: Iterable[ClusterResult]) -> PairScores:
    """Pair precision, recall and F1 of "same ``story_id``" against the annotators."""
    story = {r.id: r.story_id for r in results}
    return pair_scores([story[p.a.id] == story[p.b.id] for p in pairs], [p.same_story for p in pairs])


def best_threshold(scores: Sequence[float], gold: Sequence[bool]) -> PairScores:
    """The threshold with the best pair F1 (what a baseline tuned on the file itself reaches)."""
    best = PairScores(0.0, 0.0, 0.0, None)
    for threshold in sorted(set(scores)):
        found = pair_scores([s >= threshold for s in scores], gold, threshold)
        if found.f1 > best.f1:
            best = found
    return best


def tfidf_cosines(pairs: Sequence[Pair]) -> list[float]:
    """The baseline: TF-IDF cosine of each pair (idf over the file's texts, stop words dropped)."""
    records = records_of(pairs)

    def words(record: ClusterInput) -> list[str]:
        stops = stop_words(record.lang)
        return [w for w in normalise_text(record.text).split() if w not in stops and len(w) > 2]

    bags = {r.id: Counter(words(r)) for r in records}
    df: Counter[str] = Counter()
    for bag in bags.values():
        df.update(bag.keys())
    n = len(records)
    vectors = {
        rid: {w: (1 + math.log(c)) * math.log(n / df[w]) for w, c in bag.items()} for rid, bag in bags.items()
    }
    return [cosine(vectors[p.a.id].items(), vectors[p.b.id].items()) for p in pairs]


# ------------------------------------------------------------------ near-verbatim copies

_BYLINES = {
    "en": ("By Staff Writer and Wire Reporters", "This story was first published by our partner. Sign up for our "
           "newsletter to get the day's top stories in your inbox. © 2025 Regional Media Group. All rights reserved."),
    "fr": ("Par la rédaction, avec AFP", "Cet article a d'abord été publié par notre partenaire. Abonnez-vous à "
           "notre lettre d'information pour recevoir l'essentiel de l'actualité. © 2025 Groupe Presse Régionale."),
    "de": ("Von unserer Redaktion, mit Agenturen", "Dieser Artikel erschien zuerst bei unserem Partner. Abonnieren "
           "Sie unseren Newsletter. © 2025 Regionale Mediengruppe. Alle Rechte vorbehalten."),
}
_WORD = re.compile(r"\b[^\W\d_]{6,}\b")


@dataclass(frozen=True)
class Copy:
    record: ClusterInput
    original: str  # id of the record it copies
    how: str


def paragraphs(text: str) -> list[str]:
    return [p for p in (line.strip() for line in text.splitlines()) if p]


def make_copies(original: ClusterInput, title: str) -> list[Copy]:
    """The copies a syndicating site makes of one article (none of them the same normalised text)."""
    paras = paragraphs(original.text)
    byline, footer = _BYLINES.get(original.lang or "en", _BYLINES["en"])
    copies = {
        "byline_boilerplate": "\n".join([byline, *paras, footer]),
        "cut_after_4th_paragraph": "\n".join(paras[:4]) + "\n" + "Read the full story on our partner's site.",
        "typo_corrected": _typo(original.text),
        "headline_changed": "\n".join([f"UPDATED: {title.upper()} (exclusive)", *paras]),
    }
    return [
        Copy(ClusterInput(f"{original.id}~{how}", text, lang=original.lang), original.id, how)
        for how, text in copies.items()
    ]


def _typo(text: str) -> str:
    """The text with one word in its middle misspelt (the copy is the corrected or the uncorrected one)."""
    words = list(_WORD.finditer(text))
    if not words:
        return text + "."
    w = words[len(words) // 2]
    word = w.group()
    return text[: w.start()] + word[0] + word[2] + word[1] + word[3:] + text[w.end() :]
