"""Scoring NER against IO-tagged corpora (``token TAG`` per line), for ``bench/eval_ner.py`` and the CI floors,
and against CoNLL-2003 style documents (``index token TAG`` per line, IOB2, ``-DOCSTART-`` between documents),
for ``bench/eval_ner_en.py``.

The corpus is cut into pseudo-documents of about ``doc_tokens`` tokens (after a full stop), whose tokens are
joined by single spaces; a gold entity is a run of tokens with the same ``I-X`` tag (the IO scheme cannot
separate two adjacent entities of one type). A predicted entity counts when its character span and label equal
a gold entity's (exact match, CoNLL style). Only the corpus's labels are scored: a predicted MISC is ignored
when the corpus has no MISC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.models import Mention

Span = tuple[int, int, str]


@dataclass(frozen=True)
class GoldDoc:
    text: str
    entities: frozenset[Span]


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        figures = f"P {self.precision:.4f}  R {self.recall:.4f}  F1 {self.f1:.4f}"
        return f"{figures}  (tp {self.tp} fp {self.fp} fn {self.fn})"


def read_io_corpus(path: Path, doc_tokens: int = 500, max_tokens: int | None = None) -> list[GoldDoc]:
    """Pseudo-documents of an IO-tagged ``token TAG`` file."""
    rows: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            rows.append((parts[0], parts[1]))
        if max_tokens is not None and len(rows) >= max_tokens:
            break
    docs: list[GoldDoc] = []
    current: list[tuple[str, str]] = []
    for token, tag in rows:
        current.append((token, tag))
        if len(current) >= doc_tokens and token == ".":
            docs.append(_gold_doc(current))
            current = []
    if current:
        docs.append(_gold_doc(current))
    return docs


def _gold_doc(rows: Sequence[tuple[str, str]]) -> GoldDoc:
    pieces: list[str] = []
    spans: set[Span] = set()
    at = 0
    open_span: tuple[int, int, str] | None = None
    for token, tag in rows:
        start, end = at, at + len(token)
        label = tag[2:] if tag.startswith(("I-", "B-")) else None
        if open_span is not None and (label != open_span[2] or tag.startswith("B-")):
            spans.add(open_span)
            open_span = None
        if label is not None:
            open_span = (open_span[0], end, label) if open_span else (start, end, label)
        pieces.append(token)
        at = end + 1
    if open_span is not None:
        spans.add(open_span)
    return GoldDoc(text=" ".join(pieces), entities=frozenset(spans))


def read_conll_documents(path: Path, max_docs: int | None = None) -> list[GoldDoc]:
    """The documents of a CoNLL-2003 style file (``index token TAG``, IOB2, blank line after each sentence,
    ``-DOCSTART-`` before each document): a sentence's tokens joined by single spaces, one sentence a line,
    as an article's paragraphs reach NER."""
    docs: list[GoldDoc] = []
    sentences: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []

    def close_document() -> None:
        if current:
            sentences.append(list(current))
            current.clear()
        if sentences:
            docs.append(_gold_lines(sentences))
            sentences.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if current:
                sentences.append(list(current))
                current.clear()
            continue
        token, tag = parts[-2], parts[-1]
        if token == "-DOCSTART-":
            close_document()
            if max_docs is not None and len(docs) >= max_docs:
                return docs
            continue
        current.append((token, tag))
    close_document()
    return docs[:max_docs] if max_docs is not None else docs


def _gold_lines(sentences: Sequence[Sequence[tuple[str, str]]]) -> GoldDoc:
    lines: list[str] = []
    spans: set[Span] = set()
    at = 0
    for rows in sentences:
        sentence = _gold_doc(rows)
        lines.append(sentence.text)
        spans.update((start + at, end + at, label) for start, end, label in sentence.entities)
        at += len(sentence.text) + 1
    return GoldDoc(text="\n".join(lines), entities=frozenset(spans))


def score(
    gold: Iterable[GoldDoc], predicted: Iterable[Iterable[Mention]], label: str | None = None
) -> Score:
    """Exact-span, exact-label micro P/R/F1 over the labels the gold uses (or over ``label`` alone)."""
    tp = fp = fn = 0
    gold_docs = list(gold)
    labels = {label} if label else {lab for doc in gold_docs for _, _, lab in doc.entities}
    for doc, mentions in zip(gold_docs, predicted, strict=True):
        found = {(m.start, m.end, m.label) for m in mentions if m.label in labels}
        expected = {span for span in doc.entities if span[2] in labels}
        tp += len(found & expected)
        fp += len(found - expected)
        fn += len(expected - found)
    return Score(tp, fp, fn)
