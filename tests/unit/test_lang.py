"""Language detection on real article texts: the seed article and the fundus gold bodies."""

from __future__ import annotations

import pytest
from tests.conftest import shared_fixtures

from ingest.eval.extraction import fundus_pages
from ingest.lang import detect_language, normalise_language


def _fundus_bodies() -> list[tuple[str, str, str]]:
    """``(page, language, gold body)`` for every page of the fundus index."""
    return [(p.name, p.lang, p.body or "") for p in fundus_pages(shared_fixtures() / "pages" / "fundus")]


FUNDUS = _fundus_bodies()


def test_seed_article_is_french() -> None:
    (seed,) = sorted((shared_fixtures() / "seed").glob("*.txt"))
    assert detect_language(seed.read_text(encoding="utf-8")) == "fr"


def test_fundus_sample_covers_the_languages_the_pipeline_routes() -> None:
    counts = {lang: sum(1 for _, la, _ in FUNDUS if la == lang) for lang in ("en", "de", "fr")}
    assert all(n >= 5 for n in counts.values()), counts


@pytest.mark.parametrize(("page", "lang", "body"), FUNDUS, ids=[p for p, _, _ in FUNDUS])
def test_fundus_gold_body_language(page: str, lang: str, body: str) -> None:
    assert len(body) > 500, f"{page}: gold body unexpectedly short"
    assert detect_language(body) == lang


def test_a_summary_sized_excerpt_is_enough() -> None:
    """Feed summaries are a few hundred characters: the detector must route them, and never to a wrong language."""
    found = [(page, lang, detect_language(body[:300])) for page, lang, body in FUNDUS]
    wrong = [row for row in found if row[2] is not None and row[2] != row[1]]
    unsure = [row for row in found if row[2] is None]
    assert wrong == []
    assert len(unsure) <= len(found) // 10, unsure


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t", "12 345 678", "Bonjour", "Le chat", "Hello world", "the cat", "Zelensky Poutine Kupol", "la la la"],
)
def test_short_or_empty_text_gives_none(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("fr-FR", "fr"),
        ("fr_FR", "fr"),
        ("FR", "fr"),
        ("en-us", "en"),
        (" de-CH ", "de"),
        ("fr", "fr"),
        ("", None),
        (None, None),
        ("x", None),
        ("english", None),
        ("12", None),
    ],
)
def test_normalise_language(value: str | None, code: str | None) -> None:
    assert normalise_language(value) == code


def test_a_short_text_takes_the_declared_language_a_long_one_its_own() -> None:
    from ingest.lang import choose_language

    short = "Grève à la SNCF : les syndicats appellent à la mobilisation"
    assert choose_language(short, "es", "fr-FR", None) == "fr"
    assert choose_language(short, None, None, "fr") == "fr"  # the feed's language when the page says none
    long = " ".join(["The government said on Monday that the strike would go on for the rest of the week."] * 4)
    assert choose_language(long, "en", "fr") == "en"  # a template's declaration does not beat the text
    assert choose_language(short, None, None, None) is None
