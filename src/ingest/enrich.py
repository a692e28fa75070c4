"""Enrich stage: named entities from language-routed spaCy models."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingest.config import NlpSettings
from ingest.errors import ConfigError
from ingest.models import Article, Enrichment, Entity, EntityLabel, Mention

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

logger = logging.getLogger(__name__)

ENRICHMENT_VERSION = "1"

# spaCy English labels (OntoNotes) folded into the four CoNLL labels; numbers and dates are not entities here.
_LABELS: dict[str, EntityLabel] = {
    "PER": "PER", "PERSON": "PER",
    "ORG": "ORG",
    "LOC": "LOC", "GPE": "LOC", "FAC": "LOC",
    "MISC": "MISC", "NORP": "MISC", "EVENT": "MISC", "PRODUCT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC",
}
# Only the components NER needs run.
_KEEP = {"tok2vec", "ner"}


class NerModels:
    """spaCy pipelines by language, each loaded once on first use and kept for the life of the object."""

    def __init__(self, settings: NlpSettings) -> None:
        self.settings = settings
        self._loaded: dict[str, Language] = {}

    def model_name(self, language: str | None) -> str | None:
        return {"fr": self.settings.model_fr, "en": self.settings.model_en}.get(language or "")

    def get(self, language: str | None) -> Language | None:
        name = self.model_name(language)
        if name is None:
            return None
        if name not in self._loaded:
            import spacy

            try:
                nlp = spacy.load(name)
            except OSError as e:
                raise ConfigError(
                    f"spaCy model {name!r} is not installed; `pip install {name}` or set INGEST_NLP__MODEL_"
                    f"{(language or '').upper()}"
                ) from e
            disable = [p for p in nlp.pipe_names if p not in _KEEP]
            nlp.select_pipes(disable=disable)
            self._loaded[name] = nlp
        return self._loaded[name]

    def label(self, language: str | None) -> str:
        nlp = self.get(language)
        assert nlp is not None
        return f"{nlp.meta['lang']}_{nlp.meta['name']}-{nlp.meta['version']}"


def find_entities(texts: Sequence[str], language: str | None, models: NerModels) -> list[list[Mention]]:
    """Mentions in each text (character offsets into the text), or empty lists for other languages."""
    nlp = models.get(language)
    if nlp is None:
        return [[] for _ in texts]
    limit = models.settings.max_chars
    return [_mentions(doc) for doc in nlp.pipe((t[:limit] for t in texts), batch_size=16)]


def _mentions(doc: Doc) -> list[Mention]:
    found = []
    for ent in doc.ents:
        label = _LABELS.get(ent.label_)
        text = ent.text.strip()
        if label is None or len(text) < 2:
            continue
        found.append(Mention(text=text, label=label, start=ent.start_char, end=ent.start_char + len(text)))
    return found


def merge_mentions(mentions: Sequence[Mention]) -> list[Entity]:
    """One entity per thing named: exact surface forms grouped, and a short person name ("Poutine")
    joined to the longer one it ends ("Vladimir Poutine"); the longest form is the canonical name."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in mentions:
        groups.setdefault((m.label, m.text), []).append(m.text)
    forms = sorted(groups, key=lambda k: -len(k[1]))
    target: dict[tuple[str, str], tuple[str, str]] = {}
    for label, text in forms:
        home = (label, text)
        if label == "PER" and " " not in text:
            for other_label, other in forms:
                if other_label == "PER" and other != text and other.split()[-1] == text:
                    home = target.get((other_label, other), (other_label, other))
                    break
        target[(label, text)] = home
    merged: dict[tuple[str, str], list[str]] = {}
    for key in forms:
        merged.setdefault(target[key], []).extend(groups[key])
    order = {m.text: i for i, m in reversed(list(enumerate(mentions)))}
    entities = [
        Entity(name=name, label=label, mentions=tuple(dict.fromkeys(texts)), count=len(texts))  # type: ignore[arg-type]
        for (label, name), texts in merged.items()
    ]
    return sorted(entities, key=lambda e: min(order[t] for t in e.mentions))


def enrich_articles(articles: Sequence[Article], models: NerModels) -> list[Article]:
    """Articles with their entities; languages without a model are marked ``unsupported_language``."""
    by_language: dict[str | None, list[int]] = {}
    for i, article in enumerate(articles):
        by_language.setdefault(article.language, []).append(i)
    result: list[Article] = list(articles)
    for language, positions in by_language.items():
        if models.model_name(language) is None:
            for i in positions:
                result[i] = articles[i].model_copy(update={"enrichment": Enrichment(status="unsupported_language")})
            continue
        texts = [_ner_text(articles[i]) for i in positions]
        found = find_entities(texts, language, models)
        enrichment = Enrichment(status="ok", models=(models.label(language),), version=ENRICHMENT_VERSION)
        for i, mentions in zip(positions, found, strict=True):
            result[i] = articles[i].model_copy(
                update={
                    "mentions": tuple(mentions),
                    "entities": tuple(merge_mentions(mentions)),
                    "enrichment": enrichment,
                }
            )
    return result


def _ner_text(article: Article) -> str:
    return f"{article.title}\n\n{article.text}" if article.title else article.text
