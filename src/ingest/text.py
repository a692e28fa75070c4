"""Small text helpers the page readers share (``ingest.metadata``, ``ingest.authors``): white space collapsed,
a spelling folded for comparison (pure)."""

from __future__ import annotations

import re
import unicodedata

SPACE = re.compile(r"\s+")
WORD = re.compile(r"\w+", re.UNICODE)


def clean(text: str) -> str:
    """NFC, white space collapsed and trimmed."""
    return SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold(text: str) -> str:
    """Letters and digits only, case and accents folded: ``"L’Été - 2024"`` → ``"lete2024"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())
