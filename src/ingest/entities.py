"""Canonical entities of one article, from the NER's mentions. Pure functions of the text and the mentions.

The steps, in order:

1. **Context cues** fix a mention's label where the words before it say what it is: "la région de Sumy"
   (a place), "l'usine Kupol" (an organisation), "missiles surface-air Tor" (a product), "le président Poutine"
   (a person). The NER model gets these wrong more often than the cues do (see ``bench/eval_ner.py``).
2. **Grouping**: the same folded surface form (accents and case ignored) is one entity; forms the alias table
   knows as one entity join; an acronym joins its expansion when the text defines it ("Service de sécurité
   d'Ukraine (SBU)") or its letters are the expansion's initials; a short person name joins the one longer
   person name it ends ("Poutine" → "Vladimir Poutine").
3. **Label by majority** over the group's mentions (the alias table's label when it knows the entity; ties go to
   the longest form's label), and every mention takes its entity's label.
4. **Canonical name** (longest form), ``entity_id`` (alias id, else ``<label>:<folded name>``; places get their
   gazetteer id later), ``count``, ``first`` (character offset) and ``salience``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast, get_args

from ingest.models import Entity, EntityLabel, Mention

__all__ = [
    "AliasTable",
    "canonical_entities",
    "fold",
    "load_aliases",
    "relabel_by_context",
    "salience",
    "slug",
]

_LABELS = cast(tuple[EntityLabel, ...], get_args(EntityLabel))
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'", "\u00a0": " ", "‐": "-", "–": "-"})
_NOT_WORD = re.compile(r"[^\w]+")


def fold(text: str) -> str:
    """Accent-, case- and punctuation-insensitive key: "États-Unis" → "etats unis"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", bare.casefold()).split())


def slug(text: str) -> str:
    """``fold`` with dashes: the readable part of an ``entity_id``."""
    return fold(text).replace(" ", "-")


# Alias table --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AliasEntry:
    id: str
    label: EntityLabel
    name: str


@dataclass(frozen=True)
class AliasTable:
    """Known entities: every folded alias → its entry. Kept in the repo as ``data/aliases.json``."""

    version: str = "0"
    by_alias: Mapping[str, AliasEntry] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AliasTable:
        by_alias: dict[str, AliasEntry] = {}
        for row in data["entities"]:
            label = row["label"]
            if label not in _LABELS:
                raise ValueError(f"alias table: {row['id']}: label {label!r} is not one of {_LABELS}")
            entry = AliasEntry(id=str(row["id"]), label=label, name=str(row["name"]))
            for alias in (row["name"], *row.get("aliases", ())):
                key = alias_key(alias)
                held = by_alias.get(key)
                if held is not None and held.id != entry.id:
                    raise ValueError(f"alias table: {alias!r} names both {held.id} and {entry.id}")
                by_alias[key] = entry
        return cls(version=str(data.get("version", "0")), by_alias=by_alias)

    def get(self, form: str) -> AliasEntry | None:
        return self.by_alias.get(alias_key(form))


def alias_key(form: str) -> str:
    """Acronyms match exactly ("UN" is not the French "un"); other names accent- and case-folded."""
    if _ACRONYM.match(form) and form.upper() == form:
        return "=" + form.replace(".", "")
    return fold(form)


def load_aliases(path: Path | None = None) -> AliasTable:
    """The project's alias table (``src/ingest/data/aliases.json``)."""
    source = path or Path(str(resources.files("ingest").joinpath("data", "aliases.json")))
    return AliasTable.from_json(json.loads(source.read_text(encoding="utf-8")))


# Context cues -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cues:
    """Words that, just before a name, say what it names."""

    # "<word> de X", "<word> d'X", "<word> de la X": X is a place.
    place_of: frozenset[str]
    # "<word> [adjectives] X" or "<word> [de …], X": X is an organisation / a product / a person.
    org_heads: frozenset[str]
    misc_heads: frozenset[str]
    person_heads: frozenset[str]
    # Titles right before a name, in any case: "M. Dupont", "President Biden".
    person_titles: frozenset[str]
    # Words that may sit between a head and the name ("systèmes de défense aérienne Osa").
    linkers: frozenset[str]
    # Words that end the search: a head before them does not describe the name.
    stops: frozenset[str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FR = Cues(
    place_of=_words(
        "ville villes région régions province provinces république capitale oblast département commune village "
        "villages localité gouverneur gouverneure maire préfet préfecture banlieue faubourg faubourgs environs "
        "territoire canton arrondissement habitants habitant frontière aéroport port gare centre-ville"
    ),
    org_heads=_words(
        "usine usines société sociétés entreprise entreprises groupe compagnie agence autorité ministère parti "
        "banque journal quotidien hebdomadaire syndicat constructeur fabricant chaîne club association fondation "
        "organisation institut université"
    ),
    misc_heads=_words(
        "missile missiles système systèmes drone drones char chars avion avions hélicoptère hélicoptères "
        "fusée fusées roquette roquettes obus logiciel application opération"
    ),
    person_heads=_words(
        "président présidente ministre chancelier chancelière premier général générale député députée sénateur "
        "sénatrice pape roi reine prince princesse porte-parole maréchal amiral colonel capitaine juge"
    ),
    person_titles=_words("m. mm. mme mmes mlle mgr dr"),
    linkers=_words("de d' du des"),
    stops=_words(
        "à au aux en dans sur sous par pour avec sans vers chez contre entre et ou ni mais qui que qu' dont où "
        "a ont est sont été était se s' ne n' pas il elle ils elles on le la les l' un une son sa ses leur leurs "
        "ce cet cette ces"
    ),
)
_EN = Cues(
    place_of=_words("city town region province republic capital governor mayor outskirts village suburbs"),
    org_heads=_words("company firm group agency ministry party bank newspaper union maker manufacturer"),
    misc_heads=_words("missile missiles system systems drone drones tank tanks jet jets aircraft operation"),
    person_heads=_words(
        "president minister chancellor premier general senator pope king queen prince princess spokesman "
        "spokeswoman judge"
    ),
    person_titles=_words("mr. mrs. ms. dr. mr mrs ms dr"),
    linkers=_words("of"),
    stops=_words("in on at to from by for with and or but who which that is are was were the a an its their"),
)
CUES: Mapping[str, Cues] = {"fr": _FR, "en": _EN}

_TOKEN = re.compile(r"\w+['’]|[\w-]+\.?|[^\w\s]")
# How far back a head may sit, in words other than linkers: "systèmes de défense aérienne Osa" is three.
_WINDOW = 4
_ARTICLES = frozenset({"la", "le", "les", "l'", "the"})


def relabel_by_context(text: str, mentions: Sequence[Mention], language: str | None) -> list[Mention]:
    """Mentions whose label the words just before them contradict, relabelled; the others unchanged."""
    cues = CUES.get(language or "")
    if cues is None:
        return list(mentions)
    return [_relabelled(text, m, cues) for m in mentions]


def _relabelled(text: str, mention: Mention, cues: Cues) -> Mention:
    label = cue_label(text[max(0, mention.start - 120) : mention.start], cues)
    if label is None or label == mention.label:
        return mention
    return mention.model_copy(update={"label": label})


def cue_label(before: str, cues: Cues) -> EntityLabel | None:
    """What the words right before a name say it is, if anything."""
    tokens = [t.translate(_APOSTROPHES) for t in _TOKEN.findall(before)]
    if not tokens:
        return None
    last = tokens[-1].lower()
    if last in cues.person_titles or (last == "." and len(tokens) > 1 and f"{tokens[-2].lower()}." in
                                      cues.person_titles):
        return "PER"
    # "<place word> de (la|l') X"
    tail = [t.lower() for t in tokens[-3:]]
    if tail and tail[-1] in {"la", "l'"}:
        tail = tail[:-1]
    if len(tail) >= 2 and tail[-1] in cues.linkers and tail[-2] in cues.place_of:
        return "LOC"
    # "<head> [adjectives | de + nouns] X" and "<org head> [de …], X"
    appositive = last == ","
    words = tokens[:-1] if appositive else tokens
    if not words or words[-1].lower() in cues.linkers or words[-1].lower() in cues.stops:
        return None
    content = 0
    for back in range(1, len(words) + 1):
        word = words[-back]
        lowered = word.lower()
        if lowered in cues.linkers:
            continue
        if lowered in _ARTICLES and back < len(words) and words[-back - 1].lower() in cues.linkers:
            continue  # "autorité de l'aviation civile russe, Rosaviatsia"
        content += 1
        if content > _WINDOW or lowered in cues.stops or not word[0].isalpha():
            return None
        if lowered in cues.person_heads and not appositive:
            return "PER"
        if lowered in cues.org_heads:
            return "ORG"
        if lowered in cues.misc_heads and not appositive:
            return "MISC"
        if word[0].isupper() and word not in {"M.", "Mme"}:
            return None  # another name in between: the head describes that one
    return None


# Grouping -----------------------------------------------------------------------------------------------------

_ACRONYM = re.compile(r"^[A-ZÀ-Ý](?:\.?[A-ZÀ-Ý0-9&]){1,7}\.?$")
_INITIAL_STOPS = _words("de d du des la le les l of the and et for pour en à a")
_NAME_PARTS = re.compile(r"[\w]+")


@dataclass
class _Form:
    """One distinct surface form (folded) and its mentions (all added before ``majority`` is read)."""

    key: str
    text: str  # the first spelling seen
    mentions: list[Mention]
    _majority: EntityLabel | None = None

    @property
    def majority(self) -> EntityLabel:
        if self._majority is None:
            self._majority = Counter(m.label for m in self.mentions).most_common(1)[0][0]
        return self._majority


class _Union:
    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, key: str) -> str:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def clean_mentions(text: str | None, mentions: Iterable[Mention]) -> list[Mention]:
    """Mentions trimmed of surrounding spaces and punctuation; too short or wordless ones dropped."""
    kept = []
    for m in mentions:
        surface = m.text
        lead = len(surface) - len(surface.lstrip(" \t\n\"«»“”'’-–—:;,(["))
        surface = surface.strip(" \t\n\"«»“”'’-–—:;,([)]")
        if len(surface) < 2 or not any(ch.isalpha() for ch in surface):
            continue
        start = m.start + lead
        if text is not None and text[start : start + len(surface)] != surface:
            continue  # offsets that do not point at the text: never emit them
        kept.append(Mention(text=surface, label=m.label, start=start, end=start + len(surface)))
    return sorted(kept, key=lambda m: (m.start, -m.end))


def canonical_entities(
    mentions: Sequence[Mention],
    text: str | None = None,
    aliases: AliasTable | None = None,
) -> tuple[list[Entity], list[Mention]]:
    """Entities of one article (in order of first mention) and the mentions relabelled by their entity.

    ``text`` (the text the offsets point into) enables acronym definitions ("… (SBU)") and salience by position.
    """
    aliases = aliases or AliasTable()
    forms: dict[str, _Form] = {}
    for m in mentions:
        key = fold(m.text)
        if not key:
            continue
        forms.setdefault(key, _Form(key=key, text=m.text, mentions=[])).mentions.append(m)
    union = _Union(forms)
    alias_of = {k: aliases.get(f.text) for k, f in forms.items()}
    by_alias: dict[str, str] = {}
    for key, entry in alias_of.items():
        if entry is not None:
            if entry.id in by_alias:
                union.join(by_alias[entry.id], key)
            else:
                by_alias[entry.id] = key
    _join_acronyms(forms, union, text)
    _join_short_names(forms, union, alias_of)

    groups: dict[str, list[_Form]] = {}
    for key in forms:
        groups.setdefault(union.find(key), []).append(forms[key])
    length = len(text) if text else max((m.end for m in mentions), default=1)
    built: list[tuple[Entity, list[Mention]]] = []
    for members in groups.values():
        entry = next((alias_of[f.key] for f in members if alias_of[f.key] is not None), None)
        group_mentions = sorted((m for f in members for m in f.mentions), key=lambda m: m.start)
        name = max(members, key=lambda f: (len(f.text.split()), len(f.text), -f.mentions[0].start)).text
        label = _group_label(members, entry, name)
        count = len(group_mentions)
        first = group_mentions[0].start
        entity_id = entry.id if entry is not None else f"{label.lower()}:{slug(name)}"
        entity = Entity(
            name=name,
            label=label,
            mentions=tuple(dict.fromkeys(m.text for m in group_mentions)),
            count=count,
            entity_id=entity_id,
            first=first,
            salience=0.0,
        )
        built.append((entity, [m.model_copy(update={"label": label}) for m in group_mentions]))
    top = max((e.count for e, _ in built), default=1)
    entities = sorted(
        (e.model_copy(update={"salience": salience(e.count, top, e.first, length)}) for e, _ in built),
        key=lambda e: e.first,
    )
    relabelled = sorted((m for _, ms in built for m in ms), key=lambda m: (m.start, m.end))
    return entities, relabelled


def salience(count: int, top_count: int, first: int, length: int) -> float:
    """0..1: 0.6 × count relative to the most mentioned entity + 0.4 × how early it is first mentioned."""
    position = 1.0 - min(max(first, 0), length) / max(length, 1)
    return round(0.6 * count / max(top_count, 1) + 0.4 * position, 3)


def _group_label(members: Sequence[_Form], entry: AliasEntry | None, name: str) -> EntityLabel:
    if entry is not None:
        return entry.label
    # An acronym's label is the model's weakest guess: when the expansion is in the group, it alone votes.
    voters = [f for f in members if not _is_acronym(f.text)] or list(members)
    votes: Counter[EntityLabel] = Counter(m.label for f in voters for m in f.mentions)
    best = max(votes.values())
    tied = [label for label, n in votes.items() if n == best]
    if len(tied) == 1:
        return tied[0]
    named = next(f for f in voters if f.text == name) if any(f.text == name for f in voters) else voters[0]
    return named.majority if named.majority in tied else tied[0]


def _is_acronym(text: str) -> bool:
    return bool(_ACRONYM.match(text)) and text.upper() == text


def _initials(name: str, keep_stops: bool) -> str:
    words = _NAME_PARTS.findall(name.replace("'", " ").replace("’", " "))
    return "".join(w[0] for w in words if keep_stops or w.lower() not in _INITIAL_STOPS).upper()


def _join_acronyms(forms: Mapping[str, _Form], union: _Union, text: str | None) -> None:
    acronyms = [f for f in forms.values() if _is_acronym(f.text)]
    if not acronyms:
        return
    expansions = [f for f in forms.values() if len(f.text.split()) >= 2 and f.majority != "PER"]
    for acronym in acronyms:
        letters = acronym.text.replace(".", "")
        target = _defined_in_text(acronym, forms, text) if text else None
        if target is None:
            matches = [
                f for f in expansions
                if letters in (_initials(f.text, keep_stops=False), _initials(f.text, keep_stops=True))
            ]
            target = matches[0] if len(matches) == 1 else None
        if target is not None:
            union.join(target.key, acronym.key)


def _defined_in_text(acronym: _Form, forms: Mapping[str, _Form], text: str) -> _Form | None:
    """The form defined next to the acronym: "Expansion (ACR)" or "ACR (Expansion)"."""
    by_end = {m.end: f for f in forms.values() if f is not acronym for m in f.mentions}
    by_start = {m.start: f for f in forms.values() if f is not acronym for m in f.mentions}
    for m in acronym.mentions:
        before = re.search(r"\s*\(\s*$", text[max(0, m.start - 4) : m.start])
        after = re.match(r"\s*\)", text[m.end : m.end + 4])
        if before and after:
            home = by_end.get(m.start - len(before.group()))
            if home is not None and len(home.text.split()) >= 2:
                return home
        opening = re.match(r"\s*\(\s*", text[m.end : m.end + 4])
        if opening:
            home = by_start.get(m.end + len(opening.group()))
            if home is not None and len(home.text.split()) >= 2:
                return home
    return None


def _join_short_names(forms: Mapping[str, _Form], union: _Union, alias_of: Mapping[str, AliasEntry | None]) -> None:
    """A short form joins the one longer person name that ends with it ("Poutine" → "Vladimir Poutine")."""
    persons = [f for f in forms.values() if f.majority == "PER" and len(f.key.split()) >= 2]
    for form in forms.values():
        if form.majority == "LOC" or (alias_of[form.key] is not None and form.majority != "PER"):
            continue
        words = form.key.split()
        homes = {
            union.find(p.key)
            for p in persons
            if p is not form and len(p.key.split()) > len(words) and p.key.split()[-len(words):] == words
        }
        if len(homes) == 1:
            union.join(homes.pop(), form.key)
