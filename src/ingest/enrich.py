"""Enrich stage: language-routed spaCy NER, canonical entities per article, places geo-coded.

``enrich_articles`` is what the pipeline calls; ``analyse_texts`` is the same work on plain texts (the
``ingest entities`` command and the benchmarks use it). Models, the gazetteer and the alias table live in one
:class:`NerModels` per worker process, loaded on first use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.config import NlpSettings
from ingest.entities import AliasTable, canonical_entities, clean_mentions, load_aliases, relabel_by_context
from ingest.errors import ConfigError
from ingest.lang import normalise_language
from ingest.models import Article, Enrichment, Entity, EntityLabel, GeoPoint, Mention, Place

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from ingest.gazetteer import Gazetteer
    from ingest.ner_en import EnglishRules

logger = logging.getLogger(__name__)

__all__ = [
    "ENRICHMENT_VERSION",
    "NerModels",
    "TextEntities",
    "analyse_texts",
    "chunk_text",
    "enrich_articles",
    "find_entities",
    "locate_places",
    "merge_mentions",
    "reuse_enrichment",
]

# 2: canonical entities (acronyms, majority labels, context cues, alias table), entity ids, places.
# 3: English rules (ingest.ner_en): all-caps lines re-cased, boundaries, nationalities, countries, teams.
ENRICHMENT_VERSION = "3"

# spaCy English labels (OntoNotes) folded into the four CoNLL labels; numbers and dates are not entities here.
_LABELS: dict[str, EntityLabel] = {
    "PER": "PER", "PERSON": "PER",
    "ORG": "ORG",
    "LOC": "LOC", "GPE": "LOC", "FAC": "LOC",
    "MISC": "MISC", "NORP": "MISC", "EVENT": "MISC", "PRODUCT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC",
}


@dataclass(frozen=True)
class TextEntities:
    """What enrichment finds in one text: mentions (labels settled), canonical entities and geo-coded places."""

    mentions: tuple[Mention, ...]
    entities: tuple[Entity, ...]
    places: tuple[Place, ...]


class NerModels:
    """What one worker process needs to enrich: spaCy pipelines by language (reduced to the components NER
    uses), the gazetteer and the alias table, each loaded once on first use and kept for the life of the object.
    """

    def __init__(
        self,
        settings: NlpSettings,
        gazetteer: Gazetteer | None = None,
        aliases: AliasTable | None = None,
    ) -> None:
        self.settings = settings
        self._loaded: dict[str, Language] = {}
        self._gazetteer = gazetteer
        self._aliases = aliases
        self._english: EnglishRules | None = None

    def model_name(self, language: str | None) -> str | None:
        return {"fr": self.settings.model_fr, "en": self.settings.model_en}.get(normalise_language(language) or "")

    def get(self, language: str | None) -> Language | None:
        name = self.model_name(language)
        if name is None:
            return None
        if name not in self._loaded:
            self._loaded[name] = load_ner_pipeline(name, language)
        return self._loaded[name]

    def label(self, language: str | None) -> str:
        nlp = self.get(language)
        assert nlp is not None
        return f"{nlp.meta['lang']}_{nlp.meta['name']}-{nlp.meta['version']}"

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gazetteer is None:
            from ingest.gazetteer import load_gazetteer

            self._gazetteer = load_gazetteer(self.settings.gazetteer_min_population)
        return self._gazetteer

    @property
    def aliases(self) -> AliasTable:
        if self._aliases is None:
            self._aliases = load_aliases()
        return self._aliases

    @property
    def english_rules(self) -> EnglishRules:
        if self._english is None:
            from ingest.ner_en import load_english_rules

            self._english = load_english_rules()
        return self._english


def load_ner_pipeline(name: str, language: str | None = None) -> Language:
    """A spaCy pipeline with only ``ner`` and what it listens to (a shared ``tok2vec`` if any; the French and
    English models give ``ner`` its own, so ``ner`` runs alone)."""
    import spacy

    try:
        nlp = spacy.load(name)
    except OSError as e:
        raise ConfigError(
            f"spaCy model {name!r} is not installed; `pip install {name}` or set INGEST_NLP__MODEL_"
            f"{(language or '').upper()}"
        ) from e
    if "ner" not in nlp.pipe_names:
        raise ConfigError(f"spaCy model {name!r} has no 'ner' component; choose another INGEST_NLP__MODEL_*")
    keep = {"ner"} | {
        p for p, component in nlp.pipeline if "ner" in getattr(component, "listening_components", ())
    }
    # Listeners first (they come after their tok2vec): removing a tok2vec that still has listeners is refused.
    for pipe in reversed(nlp.pipe_names):
        if pipe not in keep:
            nlp.remove_pipe(pipe)
    logger.info("loaded %s with %s", name, nlp.pipe_names)
    return nlp


# Sentence ends: ., !, ?, … (optionally closed by a quote or bracket), then space and what starts a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"»”’)\]]*\s+(?=[\"«“(\[]?[A-ZÀ-ÖØ-Þ0-9])|\n\s*")


def chunk_text(text: str, chunk_chars: int) -> list[tuple[int, str]]:
    """``(offset, piece)`` pairs covering ``text``: whole sentences packed up to ``chunk_chars`` characters
    (a sentence longer than that is cut at a space). A text within the limit is one piece."""
    if len(text) <= chunk_chars:
        return [(0, text)]
    pieces: list[tuple[int, str]] = []
    start = 0
    cut_points = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    last_good = start
    for point in cut_points:
        if point - start <= chunk_chars:
            last_good = point
            continue
        if last_good > start:
            pieces.append((start, text[start:last_good]))
            start = last_good
        while point - start > chunk_chars:  # one sentence longer than a chunk
            space = text.rfind(" ", start + chunk_chars // 2, start + chunk_chars)
            end = space + 1 if space > start else start + chunk_chars
            pieces.append((start, text[start:end]))
            start = end
        last_good = point
    if start < len(text):
        pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def find_entities(texts: Sequence[str], language: str | None, models: NerModels) -> list[list[Mention]]:
    """Raw NER mentions of each text (character offsets into the text), or empty lists for other languages."""
    nlp = models.get(language)
    if nlp is None:
        return [[] for _ in texts]
    settings = models.settings
    english = normalise_language(language) == "en"
    found: list[list[Mention]] = [[] for _ in texts]
    jobs: list[tuple[int, int]] = []
    pieces: list[str] = []
    for i, text in enumerate(texts):
        read = text[: settings.max_chars]
        if english:
            # All-caps headlines and tables re-cased (same length): the model was trained on mixed case.
            from ingest.ner_en import truecase_caps_lines

            read = truecase_caps_lines(read)
        for offset, piece in chunk_text(read, settings.chunk_chars):
            jobs.append((i, offset))
            pieces.append(piece)
    # Pieces of similar length share a batch: the NER's transition loop runs as long as the batch's longest doc.
    order = sorted(range(len(pieces)), key=lambda k: len(pieces[k]))
    # Strings the batch adds to the vocab are freed when the zone closes: memory stays flat over long runs.
    with nlp.memory_zone():
        docs = nlp.pipe((pieces[k] for k in order), batch_size=settings.batch_size)
        for k, doc in zip(order, docs, strict=True):
            i, offset = jobs[k]
            found[i].extend(_mentions(doc, offset))
    if english:  # the surface forms are the article's, not the re-cased copy's
        found = [[m.model_copy(update={"text": text[m.start : m.end]}) for m in mentions]
                 for text, mentions in zip(texts, found, strict=True)]
    for mentions in found:
        mentions.sort(key=lambda m: (m.start, m.end))
    return found


def _mentions(doc: Doc, offset: int) -> Iterator[Mention]:
    for ent in doc.ents:
        label = _LABELS.get(ent.label_)
        # A span across a line break runs from one paragraph into the next: not a name (the facet would show it).
        if label is not None and "\n" not in ent.text:
            yield Mention(text=ent.text, label=label, start=offset + ent.start_char, end=offset + ent.end_char)


def analyse_texts(texts: Sequence[str], language: str | None, models: NerModels) -> list[TextEntities]:
    """Mentions, canonical entities and places of each text; empty for languages without a model."""
    raw = find_entities(texts, language, models)
    if models.get(language) is None:
        return [TextEntities((), (), ()) for _ in texts]
    lang = normalise_language(language)
    results = []
    for text, mentions in zip(texts, raw, strict=True):
        cleaned = clean_mentions(text, mentions)
        if lang == "en":
            from ingest.ner_en import refine_mentions

            cleaned = refine_mentions(text, cleaned, models.english_rules, models.gazetteer)
        cleaned = relabel_by_context(text, cleaned, lang)
        entities, settled = canonical_entities(cleaned, text, models.aliases)
        entities, settled = _known_places_as_loc(entities, settled, models.gazetteer)
        located, places = locate_places(entities, models.gazetteer)
        results.append(TextEntities(tuple(settled), tuple(located), tuple(places)))
    return results


# A MISC entity named exactly like a country or a city this large is that place (en_core_web_sm tags "Moscow"
# MISC in short sentences); PER and ORG are left alone ("Washington" the person, "Paris" the club).
_KNOWN_PLACE_POPULATION = 1_000_000


def _known_places_as_loc(
    entities: Sequence[Entity], mentions: Sequence[Mention], gazetteer: Gazetteer
) -> tuple[list[Entity], list[Mention]]:
    fixed = {
        e.name for e in entities
        if e.label == "MISC" and any(
            primary and (c.feature == "country" or c.population >= _KNOWN_PLACE_POPULATION)
            for c, primary in gazetteer.candidates(e.name)
        )
    }
    if not fixed:
        return list(entities), list(mentions)
    forms = {form for e in entities if e.name in fixed for form in e.mentions}
    return (
        [e.model_copy(update={"label": "LOC"}) if e.name in fixed else e for e in entities],
        [m.model_copy(update={"label": "LOC"}) if m.text in forms and m.label == "MISC" else m for m in mentions],
    )


def locate_places(entities: Sequence[Entity], gazetteer: Gazetteer) -> tuple[list[Entity], list[Place]]:
    """LOC entities geo-coded together (one article's places disambiguate each other); a located entity takes
    the gazetteer's id (``geo:<geonameid>``) so "Moscou" and "Moscow" are one entity across articles."""
    positions = []
    names = []
    for i, entity in enumerate(entities):
        if entity.label != "LOC":
            continue
        form = next((f for f in (entity.name, *entity.mentions) if gazetteer.candidates(f)), None)
        if form is not None:
            positions.append(i)
            names.append(form)
    result = list(entities)
    places: list[Place] = []
    for i, candidate in zip(positions, gazetteer.locate(names), strict=True):
        if candidate is None:
            continue
        entity = entities[i]
        result[i] = entity.model_copy(update={"entity_id": candidate.entity_id})
        places.append(
            Place(
                name=entity.name,
                entity_id=candidate.entity_id,
                geo=GeoPoint(lat=round(candidate.lat, 5), lon=round(candidate.lon, 5)),
                country_code=candidate.country_code,
                feature=candidate.feature,
                gazetteer_name=candidate.name,
                population=candidate.population or None,
            )
        )
    return result, places


def merge_mentions(mentions: Sequence[Mention], text: str | None = None) -> list[Entity]:
    """Canonical entities of one text's mentions, without the alias table or the gazetteer."""
    return canonical_entities(mentions, text)[0]


def enrich_articles(articles: Sequence[Article], models: NerModels) -> list[Article]:
    """Articles with their entities and places; languages without a model are marked ``unsupported_language``
    (still indexed, no entities)."""
    by_language: dict[str | None, list[int]] = {}
    for i, article in enumerate(articles):
        by_language.setdefault(normalise_language(article.language), []).append(i)
    result: list[Article] = list(articles)
    for language, positions in by_language.items():
        if models.model_name(language) is None:
            unsupported = Enrichment(status="unsupported_language", version=ENRICHMENT_VERSION)
            for i in positions:
                result[i] = articles[i].model_copy(
                    update={"mentions": (), "entities": (), "places": (), "enrichment": unsupported}
                )
            continue
        found = analyse_texts([ner_text(articles[i]) for i in positions], language, models)
        enrichment = Enrichment(
            status="ok", models=(models.label(language),), version=ENRICHMENT_VERSION,
            gazetteer=models.gazetteer.version,
        )
        for i, one in zip(positions, found, strict=True):
            result[i] = articles[i].model_copy(
                update={
                    "mentions": one.mentions,
                    "entities": one.entities,
                    "places": one.places,
                    "enrichment": enrichment,
                }
            )
    return result


def ner_text(article: Article) -> str:
    """What NER reads: the title, a blank line, the text. Mention offsets and ``Entity.first`` point into it."""
    return _joined(article.title, article.text)


def _joined(title: str | None, text: str) -> str:
    return f"{title}\n\n{text}" if title else text


def _found_again(entity: Entity, before: str, text: str) -> int | None:
    """Where ``entity``'s first mention (at ``entity.first`` in the original's NER text ``before``) is in the copy's
    ``text``: the same words around it, else the first of its forms standing as a word; None when it is gone."""
    start = max(0, entity.first - 40)
    context = before[start:entity.first + 60]
    if len(context) > 40 and (at := text.find(context)) >= 0:
        return at + entity.first - start
    found = [m.start() for form in entity.mentions if (m := re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text))]
    return min(found, default=None)


def reuse_enrichment(article: Article, original: Mapping[str, Any], models: NerModels) -> Article | None:
    """``article`` with the entities and places of its near-duplicate ``original`` (an indexed document's fields
    ``language``, ``entities``, ``places``, ``enrichment``, ``title`` and ``text``), instead of running NER on a text
    that differs only in boilerplate; None when they would not be what NER gives here (another language, model,
    rules or gazetteer). An entity none of whose forms is in the copy's text is left out; ``first`` is found
    again. What only the copy's own boilerplate names is not found (a byline's agency, say)."""
    language = normalise_language(article.language)
    enrichment = Enrichment.model_validate(original.get("enrichment") or {})
    if (normalise_language(original.get("language")) != language or models.model_name(language) is None
            or enrichment.status != "ok" or enrichment.version != ENRICHMENT_VERSION
            or enrichment.models != (models.label(language),) or enrichment.gazetteer != models.gazetteer.version):
        return None
    text = ner_text(article)
    before = _joined(original.get("title"), original.get("text") or "")
    entities = []
    for entity in (Entity.model_validate(row) for row in original.get("entities") or ()):
        first = _found_again(entity, before, text)
        if first is not None:
            entities.append(entity.model_copy(update={"first": first}))
    kept = {entity.entity_id for entity in entities}
    places = tuple(Place.model_validate(row) for row in original.get("places") or () if row["entity_id"] in kept)
    return article.model_copy(
        update={"mentions": (), "entities": tuple(entities), "places": places, "enrichment": enrichment}
    )
