"""Language of a text from its most frequent function words: cheap, offline, good enough to route NER."""

from __future__ import annotations

import re
from collections import Counter

_FUNCTION_WORDS = {
    "fr": "le la les de des du un une et est en que qui dans pour pas sur au aux par plus ce cette il elle "
    "ont sont avec ne se son sa ses été leur mais comme",
    "en": "the of and to in is that for it was on with as are be by this at from have has his her "
    "an which not but were they their said",
    "de": "der die das und ist nicht mit den dem ein eine zu von auf für sich des im auch es wird "
    "sind bei aus nach wie",
    "es": "el la los las de que y en un una es por con para del se al lo como más su sus pero fue ha este esta",
    "it": "il lo la gli le di che e è un una per con del della non sono nel alla ha da come anche questo",
    "nl": "de het een en van is dat niet op te zijn met voor die er aan ook als bij door maar om",
    "pt": "o a os as de que e do da em um uma para com não por mais dos das se ao como foi são",
}
_STOPWORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split(" ")) for lang, words in _FUNCTION_WORDS.items()}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str, min_hits: int = 3) -> str | None:
    """ISO 639-1 code of the language whose function words dominate, or ``None`` when unsure."""
    words = Counter(w.lower() for w in _WORD.findall(text[:20_000]))
    if not words:
        return None
    scores = {lang: sum(words[w] for w in stop) for lang, stop in _STOPWORDS.items()}
    best, hits = max(scores.items(), key=lambda kv: kv[1])
    runner_up = max((v for k, v in scores.items() if k != best), default=0)
    if hits < min_hits or hits < 1.2 * runner_up:
        return None
    return best


def normalise_language(value: str | None) -> str | None:
    """``fr-FR`` → ``fr``; empty → ``None``."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if 2 <= len(code) <= 3 and code.isalpha() else None


# Below this many words, function words are too few to tell French from Spanish or Italian ("la", "de", "en"):
# a language the page or the feed declares is trusted before the text's.
SHORT_TEXT_WORDS = 40


def choose_language(text: str, detected: str | None, *declared: str | None) -> str | None:
    """The language of a text: what its words say, unless the text is too short to tell and a declaration (the
    page's ``lang``, the feed's language) exists; else whatever is known."""
    stated = next((code for code in map(normalise_language, declared) if code), None)
    if stated and len(_WORD.findall(text[:2_000])) < SHORT_TEXT_WORDS:
        return stated
    return detected or stated

