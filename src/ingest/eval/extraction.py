"""Extraction quality against golden pages: per-field scores, the same code for the CI gate and the benchmark.

Two golden sets are read (their layout is the one in ``shared/fixtures/pages``):

- fundus: news pages with the publisher's title, authors, publication date and body;
- trafilatura: pages with snippets that must (``with``) and must not (``without``) be in the main text.

An extractor is any function ``(html bytes, url) -> Fields``; :func:`fields_of` adapts ``extract_article``.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from statistics import mean
from typing import Any

import lxml.html

from ingest.errors import PermanentError
from ingest.models import Extracted

_TOKEN = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Fields:
    """The fields the golden files judge."""

    title: str
    text: str
    authors: tuple[str, ...] = ()
    published: date | None = None


Extractor = Callable[[bytes, str], Fields]


def fields_of(extracted: Extracted) -> Fields:
    day = extracted.published_at.date() if extracted.published_at else None
    return Fields(extracted.title or "", extracted.text, extracted.authors, day)


def normalise_title(text: str) -> str:
    """NFKC, soft hyphens dropped, white space collapsed: how two titles are compared for an exact match."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text.replace("\u00ad", ""))).strip()


def tokens(text: str) -> Counter[str]:
    # Soft hyphens (Helikopter\xadlandeplatz) are invisible line-break hints, not word boundaries.
    folded = unicodedata.normalize("NFKC", text.replace("\u00ad", "")).casefold()
    return Counter(_TOKEN.findall(folded))


def token_f1(got: str, gold: str) -> float:
    """Bag-of-words F1 of two texts, the usual score for main-text extraction; two empty texts agree."""
    predicted, expected = tokens(got), tokens(gold)
    if not predicted and not expected:
        return 1.0
    overlap = sum((predicted & expected).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(predicted.values())
    recall = overlap / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def snippet_in(snippet: str, text: str) -> bool:
    return normalise_title(snippet).casefold() in normalise_title(text).casefold()


# ---------------------------------------------------------------- golden sets


@dataclass(frozen=True)
class GoldPage:
    """One golden page: its bytes, where it was fetched from, and what a correct extraction holds."""

    name: str
    url: str
    lang: str
    html: bytes
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: date | None = None
    body: str | None = None
    # Snippets (trafilatura set): must be in the text / must not.
    with_snippets: tuple[str, ...] = ()
    without_snippets: tuple[str, ...] = ()


def fundus_pages(root: Path) -> list[GoldPage]:
    """The fundus golden pages under ``root`` (``index.json`` + ``<cc>/<Publisher>.json``)."""
    pages = []
    for entry in json.loads((root / "index.json").read_text(encoding="utf-8")):
        gold = json.loads((root / entry["expected_json"]).read_text(encoding="utf-8"))[entry["version"]]
        raw = gold.get("publishing_date")
        pages.append(
            GoldPage(
                name=entry["html"],
                url=entry["url"],
                lang=entry["lang"],
                html=gzip.decompress((root / entry["html"]).read_bytes()),
                title=gold["title"],
                authors=tuple(gold.get("authors") or ()),
                # The publisher's local calendar day, as printed on the page.
                published=datetime.fromisoformat(raw).date() if raw else None,
                body=fundus_body(gold),
            )
        )
    return pages


def fundus_body(gold: dict[str, Any]) -> str:
    """The gold article body of a fundus golden file: summary, then each section's headline and paragraphs."""
    body = gold["body"]
    parts = list(body.get("summary", []))
    for section in body["sections"]:
        parts.extend(section["headline"])
        parts.extend(section["paragraphs"])
    return "\n".join(parts)


def trafilatura_pages(root: Path) -> list[GoldPage]:
    """The trafilatura evaluation pages under ``root`` (``evaldata_*.json`` + ``html/``)."""
    pages = []
    for gold_file in sorted(root.glob("evaldata_*.json")):
        lang = gold_file.stem.split("_")[1]
        for url, gold in json.loads(gold_file.read_text(encoding="utf-8")).items():
            raw_date = gold.get("date") or ""
            pages.append(
                GoldPage(
                    name=gold["file"],
                    url=url,
                    lang=lang,
                    html=(root / "html" / gold["file"]).read_bytes(),
                    title=gold.get("title") or None,
                    authors=(gold["author"],) if gold.get("author") else (),
                    published=date.fromisoformat(raw_date) if raw_date else None,
                    with_snippets=tuple(gold.get("with") or ()),
                    without_snippets=tuple(gold.get("without") or ()),
                )
            )
    return pages


def headline_is_printed(page: GoldPage) -> bool:
    """Whether some element of the page body holds exactly the gold headline."""
    if not page.title:
        return False
    tree = lxml.html.document_fromstring(page.html.decode("utf-8", errors="replace"))
    body = tree.find("body")
    gold = normalise_title(page.title)
    return body is not None and any(
        isinstance(e.tag, str) and e.tag not in ("script", "style") and normalise_title("".join(e.itertext())) == gold
        for e in body.iter()
    )


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class PageScore:
    page: GoldPage
    got: Fields | None  # None when the extractor refused the page
    error: str | None = None

    @property
    def _got(self) -> Fields:
        return self.got or Fields("", "")

    @property
    def body_f1(self) -> float | None:
        return None if self.page.body is None else token_f1(self._got.text, self.page.body)

    @property
    def title_exact(self) -> bool | None:
        if self.page.title is None:
            return None
        return normalise_title(self._got.title) == normalise_title(self.page.title)

    @property
    def title_f1(self) -> float | None:
        return None if self.page.title is None else token_f1(self._got.title, self.page.title)

    @cached_property
    def title_exact_visible(self) -> bool | None:
        """Exact match on pages whose gold headline is printed in the page body (some golds are a social or
        SEO headline found only in ``og:title`` or JSON-LD, which a reader never sees)."""
        return self.title_exact if self.page.title and headline_is_printed(self.page) else None

    @property
    def day_correct(self) -> bool | None:
        return None if self.page.published is None else self._got.published == self.page.published

    @property
    def authors_f1(self) -> float | None:
        if not self.page.authors:
            return None
        return token_f1(" ".join(self._got.authors), " ".join(self.page.authors))

    @property
    def _document(self) -> str:
        # The snippets judge what a reader gets: the headline is part of it even when it is its own field.
        return f"{self._got.title}\n{self._got.text}"

    @property
    def with_found(self) -> list[bool]:
        return [snippet_in(s, self._document) for s in self.page.with_snippets]

    @property
    def without_absent(self) -> list[bool]:
        return [not snippet_in(s, self._document) for s in self.page.without_snippets]

    def line(self) -> str:
        got = self._got
        return (
            f"{self.page.name:42} {self.page.lang} body={_fmt(self.body_f1)} title={_fmt(self.title_f1)} "
            f"exact={self.title_exact} day={got.published}/{self.page.published} "
            f"authors={list(got.authors)}/{list(self.page.authors)}"
            + (f"\n    title {got.title!r}\n     gold {self.page.title!r}" if self.title_exact is False else "")
            + (f" error={self.error}" if self.error else "")
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class Scores:
    """Per-field scores over a golden set (each over the pages whose gold has that field)."""

    pages: list[PageScore] = field(default_factory=list)

    @staticmethod
    def _values(values: Iterable[float | bool | None]) -> list[float]:
        return [float(v) for v in values if v is not None]

    def _mean(self, values: Iterable[float | bool | None]) -> float:
        kept = self._values(values)
        return mean(kept) if kept else 1.0

    @property
    def body_f1(self) -> float:
        return self._mean(p.body_f1 for p in self.pages)

    @property
    def title_exact(self) -> float:
        return self._mean(p.title_exact for p in self.pages)

    @property
    def title_f1(self) -> float:
        return self._mean(p.title_f1 for p in self.pages)

    @property
    def title_exact_visible(self) -> float:
        return self._mean(p.title_exact_visible for p in self.pages)

    @property
    def day_correct(self) -> float:
        return self._mean(p.day_correct for p in self.pages)

    @property
    def authors_f1(self) -> float:
        return self._mean(p.authors_f1 for p in self.pages)

    @property
    def with_recall(self) -> float:
        return self._mean(found for p in self.pages for found in p.with_found)

    @property
    def without_absence(self) -> float:
        return self._mean(absent for p in self.pages for absent in p.without_absent)

    @property
    def refused(self) -> int:
        return sum(p.got is None for p in self.pages)

    def as_dict(self) -> dict[str, float]:
        return {
            "pages": len(self.pages),
            "refused": self.refused,
            "body_f1": round(self.body_f1, 4),
            "title_exact": round(self.title_exact, 4),
            "title_f1": round(self.title_f1, 4),
            "title_exact_visible": round(self.title_exact_visible, 4),
            "day_correct": round(self.day_correct, 4),
            "authors_f1": round(self.authors_f1, 4),
            "with_recall": round(self.with_recall, 4),
            "without_absence": round(self.without_absence, 4),
        }

    def report(self) -> str:
        return "\n".join(p.line() for p in self.pages)


def score(pages: Iterable[GoldPage], extractor: Extractor) -> Scores:
    """Run ``extractor`` on every page and score it; a page it refuses scores as empty."""
    results = []
    for page in pages:
        try:
            results.append(PageScore(page, extractor(page.html, page.url)))
        except PermanentError as e:
            results.append(PageScore(page, None, e.reason))
    return Scores(results)
