"""Author names made into people (ingest.authors) and the page sources they are read from (ingest.metadata):
rules of issue 21, each on an invented snippet."""

from __future__ import annotations

import lxml.html
import pytest

from ingest import authors, metadata

URL = "https://www.courier.example/news/2026/harbour-bridge"


def _facts(head: str) -> metadata.PageFacts:
    return metadata.read_page(lxml.html.document_fromstring(f"<html><head>{head}</head><body></body></html>"), URL)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        # "Von" before a particle is the name's own; before a first name it is the byline word.
        ("Von der Leyen", ("Von der Leyen",)),
        ("Von Jana Beispiel und Max Muster", ("Jana Beispiel", "Max Muster")),
        ("von dpa", ("dpa",)),
        # A social handle, the paper written for and the place written from, after a name.
        ("Jane Doe (@janedoe)", ("Jane Doe",)),
        ("Jane Doe @janedoe", ("Jane Doe",)),
        ("By JANE DOE FOR THE COURIER", ("JANE DOE",)),
        ("Jean Exemple pour Le Courrier", ("Jean Exemple",)),
        ("Jane Doe in New York", ("Jane Doe",)),
        ("Jane Doe Senior Reporter in London", ("Jane Doe",)),
        ("Jana Beispiel aus Berlin", ("Jana Beispiel",)),
        ("Anna in Rom", ("Anna in Rom",)),  # one word would be left: not cut
        # Picture credits are not authors.
        (["Jane Doe", "(Image: Example Photo Agency)"], ("Jane Doe",)),
        ("Text: Jane Doe, Photo: John Roe", ("Jane Doe",)),
        # An author page's URL in place of a name; another URL is not a name.
        ("https://www.courier.example/author/jane-doe/", ("Jane Doe",)),
        ("https://social.example/janedoe", ()),
        # Entities a template escaped twice.
        ("Ana&#239;s Exemple &amp; Jean Exemple", ("Anaïs Exemple", "Jean Exemple")),
    ],
)
def test_clean_authors_particles_handles_tails_credits_entities(raw: list[str] | str, names: tuple[str, ...]) -> None:
    assert authors.clean_authors(raw) == names


def test_the_first_source_naming_a_person_wins_over_the_sites_own_name() -> None:
    sites = ["The Courier", "courier.example"]
    assert authors.pick_authors((["The Courier"], None, ["By Jane Doe"]), sites) == ("Jane Doe",)
    assert authors.pick_authors((["The Courier"], "", []), sites) == ("The Courier",)  # no one else named
    assert authors.pick_authors(([], "Jane Doe", ["John Roe"]), sites) == ("Jane Doe",)
    assert authors.pick_authors((["@courier"], "Jane Doe"), sites) == ("Jane Doe",)  # nothing left of the first


def test_authors_of_an_article_that_is_a_web_pages_main_entity() -> None:
    facts = _facts(
        '<script type="application/ld+json">{"@type": "WebPage", "name": "Harbour bridge", "mainEntity": '
        '{"@type": "NewsArticle", "headline": "Harbour bridge reopens", "author": {"@type": "Person", '
        '"name": "Jane Doe"}}}</script>'
    )
    assert facts.article.get("headline") == "Harbour bridge reopens"
    assert metadata.declared_authors(facts) == ["Jane Doe"]


def test_authors_from_json_ld_creator_and_from_yoasts_written_by() -> None:
    creator = '<script type="application/ld+json">{"@type": "NewsArticle", "creator": ["Jane Doe"]}</script>'
    assert metadata.declared_authors(_facts(creator)) == ["Jane Doe"]
    yoast = (
        '<meta name="twitter:label1" content="Written by"><meta name="twitter:data1" content="Jane Doe">'
        '<meta name="twitter:label2" content="Est. reading time"><meta name="twitter:data2" content="3 minutes">'
    )
    assert metadata.declared_authors(_facts(yoast)) == ["Jane Doe"]
    other = '<meta name="twitter:label1" content="Est. reading time"><meta name="twitter:data1" content="3 minutes">'
    assert metadata.declared_authors(_facts(other)) == []


def test_a_person_with_given_and_family_names_only() -> None:
    facts = _facts(
        '<script type="application/ld+json">{"@type": "NewsArticle", "author": {"@type": "Person", '
        '"givenName": "Jane", "familyName": "Doe"}}</script>'
    )
    assert metadata.declared_authors(facts) == ["Jane Doe"]
