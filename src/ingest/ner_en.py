"""English NER rules around the model: pure functions of the text, the mentions and general resources.

``en_core_web_sm`` is trained on mixed-case OntoNotes text; news (and CoNLL-2003, ``bench/eval_ner_en.py``) has
all-caps headlines and results tables, spans that run over a comma or a bracket, determiners and titles inside
names, nationalities it calls places or people, and places it calls people. What is done here, in order:

1. **All-caps lines re-cased** before the model reads them (:func:`truecase_caps_lines`, same length, so offsets
   hold): each word takes the spelling the article uses elsewhere, a function word is lower-cased, another word
   capitalised ("SOCCER - UNITED FANS LOCKED OUT" → "Soccer - United fans locked out").
2. **Boundaries** (:func:`refine_mentions`): a span is cut at commas, brackets and scores ("Wembley , London"
   → two places); a sport's name is not an organisation ("SOCCER - …" slugs); a span loses a leading "the", a
   trailing possessive "'s", figures around a name ("3 Anna Berg") and, for a person, a title ("President",
   "Mr.", "Prime Minister"); an initial joins its surname ("J. Smith"); a name inside a hyphenated word
   takes the word ("Lyon-based", "ex-Chelsea": MISC).
3. **Labels from general knowledge**: a nationality, people or religion (``data/demonyms_en.json``) is MISC, and
   one the model missed is added; a name ending "Cup", "Open", "Games", "Championship" … is an event (MISC);
   a country's name is LOC; a city the model calls a person is LOC unless a longer
   person name in the article ends with it; a place followed by a score or in "X beat Y" / "v X" is a team (ORG);
   "Firstname Lastname ( Country )" in a results line is a person.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.entities import fold
from ingest.models import EntityLabel, Mention

if TYPE_CHECKING:
    from ingest.gazetteer import Gazetteer

__all__ = ["EnglishRules", "load_english_rules", "refine_mentions", "truecase_caps_lines"]

_WORD = re.compile(r"[A-Za-z][A-Za-z'.]*")


def _function_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def truecase_caps_lines(text: str, function_words: frozenset[str] | None = None) -> str:
    """``text`` with each all-caps line (at least two letters, none lower-case) re-cased word by word; other lines
    unchanged and the length the same, so offsets into the result point into ``text``."""
    lines = text.split("\n")
    caps = [_is_caps(line) for line in lines]
    if not any(caps):
        return text
    stop = function_words if function_words is not None else _function_words()
    spellings: dict[str, Counter[str]] = {}
    for line, is_caps in zip(lines, caps, strict=True):
        if is_caps:
            continue
        for m in _WORD.finditer(line):
            word = m.group()
            spellings.setdefault(word.lower(), Counter())[word] += 1

    def recase(m: re.Match[str]) -> str:
        word = m.group()
        seen = spellings.get(word.lower())
        if seen:
            # The spelling the article uses most in its mixed-case lines ("Rangers", "fans").
            best = seen.most_common(1)[0][0]
            return best if len(best) == len(word) else word
        if word.lower() in stop:
            return word.lower()
        if len(word.rstrip(".")) <= 2 or "." in word.rstrip("."):
            return word  # "UN", "U.S.", "J.": acronyms and initials stay as they are
        return word[0] + word[1:].lower()

    out = []
    for line, is_caps in zip(lines, caps, strict=True):
        if not is_caps:
            out.append(line)
            continue
        recased = _WORD.sub(recase, line)
        # The first word of a line starts with a capital whatever it is.
        first = _WORD.search(recased)
        if first is not None and recased[first.start()].islower():
            recased = recased[: first.start()] + recased[first.start()].upper() + recased[first.start() + 1 :]
        out.append(recased if len(recased) == len(line) else line)
    return "\n".join(out)


def _is_caps(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


@dataclass(frozen=True)
class EnglishRules:
    """General resources the English rules use: demonyms (folded) and titles."""

    demonyms: frozenset[str]
    demonym_pattern: re.Pattern[str]


def load_english_rules(path: Path | None = None) -> EnglishRules:
    """The demonym list of ``src/ingest/data/demonyms_en.json`` as rules."""
    source = path or Path(str(resources.files("ingest").joinpath("data", "demonyms_en.json")))
    names: list[str] = json.loads(source.read_text(encoding="utf-8"))["names"]
    # Longest first so "South African" wins over "African"; a word on its own, not inside "Indianapolis".
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w'-])(?:{alternatives})(?![\w'])")
    return EnglishRules(demonyms=frozenset(fold(n) for n in names), demonym_pattern=pattern)


# Titles before a person's name: not part of it (CoNLL and OntoNotes both leave them out).
_TITLES = re.compile(
    r"^(?:(?:(?:vice|deputy|former|acting|prime|foreign|defence|defense|finance|interior|general|chief|"
    r"state|lieutenant|major|sergeant|brigadier|rear|head)[\s-]+)*"
    r"(?:president|minister|secretary|chancellor|premier|senator|sen\.|governor|gov\.|mayor|king|queen|"
    r"prince|princess|pope|judge|justice|general|gen\.|colonel|col\.|captain|capt\.|commander|admiral|"
    r"lieutenant|lt\.|sergeant|sgt\.|coach|manager|striker|midfielder|defender|goalkeeper|bishop|archbishop|"
    r"cardinal|father|rev\.|reverend|sheikh|ayatollah|mr\.?|mrs\.?|ms\.?|dr\.?|prof\.?|professor|"
    r"rep\.|representative|ambassador|envoy|spokesman|spokeswoman|chairman|chairwoman|leader|"
    r"lord|lady|dame|sir|saint|st\.)\s+)+",
    re.IGNORECASE,
)
# A score, a rank or a figure next to a name in a results line: "Leeds 2", "3 Anna Berg", "2. Jane Doe".
_LEADING_FIGURES = re.compile(r"^(?:[\d.,:/-]+\s+)+")
_TRAILING_FIGURES = re.compile(r"(?:\s+[\d.,:/-]+)+$")
_POSSESSIVE = re.compile(r"\s*['’]s?$")
_DETERMINER = re.compile(r"^(?:the|a|an)\s+")
_CUT = re.compile(r"\s*[,()\[\]]\s*|\s+-\s+|\s+\d+\s+")
# A following integer score (not a date "1996-08-30", a time "3:46" or a decimal "10.08").
_SCORE_AFTER = re.compile(
    r"^\s+(?:\d{1,3}-\d{1,3}(?![\d-])|\d+(?!\d)(?![./:-]\d))(?!\s*(?:percent|pct|%|million|billion|years?)\b)"
)
_MATCH_BEFORE = re.compile(r"(?:\bv\.?|\bvs\.?|\bbeat)\s+$")
_MATCH_AFTER = re.compile(r"^\s+(?:beat|v\.?|vs\.?|drew|lost to)\b")
_NAME_BEFORE_COUNTRY = re.compile(
    r"(?<![\w.])((?:[A-Z][a-z]+|[A-Z]\.)(?:[ -](?:[A-Z][a-zA-Z'-]+|[A-Z]\.)){1,2}) \( ([A-Z][\w. ]+?) \)"
)
_CITY_AS_PLACE = 100_000
# A name ending with one of these is a competition or an event (OntoNotes EVENT, CoNLL MISC): "Davis Cup",
# "US Open", "Commonwealth Games", "World Series".
_EVENT_HEADS = frozenset({
    "cup", "open", "games", "olympics", "olympiad", "championship", "championships", "series", "trophy",
    "tournament", "classic", "prix", "marathon", "rally", "masters", "derby", "regatta", "festival",
})
# "Lyon-based", "ex-Chelsea", "pro-Moscow": a name inside a hyphenated word is that word (CoNLL: MISC).
_HYPHEN_AFTER = re.compile(r"^-[a-z]+\b")
_HYPHEN_BEFORE = re.compile(r"\b(?:ex|pro|anti|non|post|pre|all)-$", re.IGNORECASE)
# Sports are not organisations: the model takes a wire story's slug ("SOCCER - …", "Cricket - …") for one.
_SPORTS = frozenset({
    "soccer", "football", "cricket", "tennis", "golf", "baseball", "basketball", "athletics", "cycling", "rugby",
    "rugby union", "rugby league", "boxing", "motor racing", "motorcycling", "formula one", "swimming", "hockey",
    "ice hockey", "skiing", "alpine skiing", "sailing", "rowing", "squash", "badminton", "volleyball", "handball",
    "horse racing", "equestrianism", "judo", "wrestling", "weightlifting", "gymnastics", "fencing", "triathlon",
    "snooker", "darts", "chess", "nfl", "nba", "nhl",
})
_INITIAL = re.compile(r"^[A-Z]\.$")


def refine_mentions(
    text: str, mentions: Sequence[Mention], rules: EnglishRules, gazetteer: Gazetteer
) -> list[Mention]:
    """English mentions with their boundaries and labels fixed by the rules of this module (sorted)."""
    cut = [piece for m in mentions for piece in _cut(text, m)]
    trimmed = [
        _joined(text, t) for m in cut if (t := _trimmed(text, m)) is not None and fold(t.text) not in _SPORTS
    ]
    persons = {fold(m.text) for m in trimmed if m.label != "LOC" and " " in m.text}
    settled = [_settled(text, m, rules, gazetteer, persons) for m in trimmed]
    settled += _missed_demonyms(text, settled, rules)
    settled += _missed_competitors(text, settled, rules, gazetteer)
    unique = {(m.start, m.end): m for m in settled}
    return sorted(unique.values(), key=lambda m: (m.start, -m.end))


def _sub(text: str, m: Mention, start: int, end: int) -> Mention | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    surface = text[start:end]
    if len(surface) < 2 or not any(ch.isalpha() for ch in surface):
        return None
    return Mention(text=surface, label=m.label, start=start, end=end)


def _cut(text: str, m: Mention) -> list[Mention]:
    surface = text[m.start : m.end]
    if not _CUT.search(surface):
        return [m]
    pieces: list[Mention] = []
    at = 0
    for sep in _CUT.finditer(surface):
        piece = _sub(text, m, m.start + at, m.start + sep.start())
        if piece is not None:
            pieces.append(piece)
        at = sep.end()
    last = _sub(text, m, m.start + at, m.end)
    if last is not None:
        pieces.append(last)
    return pieces


def _trimmed(text: str, m: Mention) -> Mention | None:
    start, end = m.start, m.end
    surface = text[start:end]
    for pattern in (_LEADING_FIGURES, _DETERMINER) + ((_TITLES,) if m.label == "PER" else ()):
        lead = pattern.match(surface)
        if lead and lead.end() < len(surface):
            start += lead.end()
            surface = surface[lead.end() :]
    for pattern in (_TRAILING_FIGURES, _POSSESSIVE):
        tail = pattern.search(surface)
        if tail and tail.start() > 0:
            end -= len(surface) - tail.start()
            surface = surface[: tail.start()]
    return _sub(text, m, start, end)


def _joined(text: str, m: Mention) -> Mention:
    """An initial joins the surname after it ("J. Smith"); a name inside a hyphenated word takes the word."""
    if _INITIAL.match(m.text):
        surname = re.match(r" ([A-Z][a-zA-Z'-]+)", text[m.end :])
        if surname:
            return Mention(text=text[m.start : m.end + surname.end()], label="PER", start=m.start,
                           end=m.end + surname.end())
    after = _HYPHEN_AFTER.match(text[m.end : m.end + 20])
    before = _HYPHEN_BEFORE.search(text[max(0, m.start - 5) : m.start])
    if after or before:
        start = m.start - (len(before.group()) if before else 0)
        end = m.end + (after.end() if after else 0)
        return Mention(text=text[start:end], label="MISC", start=start, end=end)
    return m


def _is_country(gazetteer: Gazetteer, name: str) -> bool:
    return any(
        primary and c.feature == "country"
        for form in {name, name.replace(".", "")}  # "U.S." is "US"
        for c, primary in gazetteer.candidates(form)
    )


def _is_city(gazetteer: Gazetteer, name: str) -> bool:
    return any(
        primary and c.feature == "city" and c.population >= _CITY_AS_PLACE for c, primary in gazetteer.candidates(name)
    )


def _settled(
    text: str, m: Mention, rules: EnglishRules, gazetteer: Gazetteer, persons: set[str]
) -> Mention:
    label = _general_label(m, rules, gazetteer, persons)
    if label == "LOC" and not _is_country(gazetteer, m.text) and _is_team(text, m):
        label = "ORG"  # a town's team: "Leeds 2 Chelsea 1", "Leeds beat Chelsea", "v Leeds"
    return m if label == m.label else m.model_copy(update={"label": label})


def _general_label(m: Mention, rules: EnglishRules, gazetteer: Gazetteer, persons: set[str]) -> EntityLabel:
    """MISC for a nationality, a hyphenated word or an event; LOC for a country, or a city the model took for a
    person no longer person name of the article ends with; else the model's label."""
    key = fold(m.text)
    words = key.split()
    if key in rules.demonyms or ("-" in m.text and m.label == "MISC"):
        return "MISC"
    if len(words) >= 2 and words[-1] in _EVENT_HEADS:
        return "MISC"
    if _is_country(gazetteer, m.text):
        return "LOC"
    if m.label == "PER" and len(words) == 1 and _is_city(gazetteer, m.text) and not any(
        p.endswith(" " + key) for p in persons
    ):
        return "LOC"
    return m.label


def _is_team(text: str, m: Mention) -> bool:
    line_start = text.rfind("\n", 0, m.start) + 1
    line_end = text.find("\n", m.end)
    after = text[m.end : line_end if line_end >= 0 else len(text)]
    before = text[line_start : m.start]
    return bool(_SCORE_AFTER.match(after) or _MATCH_BEFORE.search(before) or _MATCH_AFTER.match(after))


def _free(start: int, end: int, mentions: Sequence[Mention]) -> bool:
    return not any(m.start < end and m.end > start for m in mentions)


def _missed_demonyms(text: str, mentions: Sequence[Mention], rules: EnglishRules) -> list[Mention]:
    found = []
    for hit in rules.demonym_pattern.finditer(text):
        start, end = hit.span()
        following = re.match(r"\s+([A-Z]\w*)", text[end:])
        # "Russian Foreign Ministry", "Christian Dior": a name goes on; leave it to the model.
        if following and fold(following.group(1)) not in rules.demonyms:
            continue
        if _free(start, end, mentions):
            found.append(Mention(text=hit.group(), label="MISC", start=start, end=end))
    return found


def _missed_competitors(
    text: str, mentions: Sequence[Mention], rules: EnglishRules, gazetteer: Gazetteer
) -> list[Mention]:
    """"Anna Berg ( Sweden )", "Jane Doe ( U.S. )": a name the model missed before a bracketed country."""
    found = []
    for hit in _NAME_BEFORE_COUNTRY.finditer(text):
        country = hit.group(2)
        if not (_is_country(gazetteer, country) or fold(country) in rules.demonyms):
            continue
        start, end = hit.span(1)
        if _free(start, end, mentions):
            found.append(Mention(text=hit.group(1), label="PER", start=start, end=end))
    return found
