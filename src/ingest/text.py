"""Small text helpers the page readers share (``ingest.metadata``, ``ingest.authors``): white space collapsed,
entities a template escaped twice decoded, a spelling folded for comparison, initials, word overlap (pure)."""

from __future__ import annotations

import html
import re
import unicodedata

SPACE = re.compile(r"\s+")
WORD = re.compile(r"\w+", re.UNICODE)
# An entity still in text that was decoded once ("&#039;", "&amp;", "&eacute;"): JSON-LD and meta values written
# by templates that escape them twice.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


def unescape(text: str) -> str:
    """``"Tom &amp;amp; Jerry&#039;s"`` as read from a page → ``"Tom & Jerry's"``; text without entities as is."""
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), text) if "&" in text else text


def clean(text: str) -> str:
    """NFC, white space collapsed and trimmed, entities escaped twice decoded."""
    return SPACE.sub(" ", unicodedata.normalize("NFC", unescape(text))).strip()


def fold(text: str) -> str:
    """Letters and digits only, case and accents folded: ``"L’Été - 2024"`` → ``"lete2024"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the two texts' sets of words, case folded."""
    ta, tb = WORD.findall(a.casefold()), WORD.findall(b.casefold())
    if not ta or not tb:
        return 0.0
    return 2 * len(set(ta) & set(tb)) / (len(set(ta)) + len(set(tb)))


_ARTICLES = frozenset({"the", "le", "la", "les", "die", "der", "das", "de", "het", "el", "il", "lo", "o", "a"})


def initials(name: str) -> set[str]:
    """``"The New York Times"`` → ``{"tnyt", "nyt"}`` (folded); nothing for a name of one word."""
    words = [fold(w)[:1] for w in name.replace("-", " ").split() if fold(w)]
    if len(words) < 2:
        return set()
    kept = words[1:] if name.split()[0].casefold() in _ARTICLES else words
    return {"".join(w) for w in (words, kept) if len(w) >= 2}
