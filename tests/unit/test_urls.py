"""Canonical URLs and article ids: what makes two links the same article, and what keeps two articles apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.embedded.services import DEMO_ROOT
from ingest.models import FeedSource
from ingest.poll import parse_feed
from ingest.urls import article_id, canonical_url, domain_of

PAGE = "https://www.lemonde.fr/international/article/2025/07/01/izhevsk_6617.html"


@pytest.mark.parametrize(
    "query",
    [
        "utm_source=rss",
        "utm_source=rss&utm_medium=feed&utm_campaign=une",
        "UTM_Source=Newsletter",
        "fbclid=IwAR3xYz",
        "gclid=EAIaIQob",
        "xtor=RSS-3208",
        "utm_source=rss&fbclid=IwAR3xYz&gclid=EAIaIQob&xtor=RSS-3208",
    ],
)
def test_tracking_parameters_are_stripped(query: str) -> None:
    assert canonical_url(f"{PAGE}?{query}") == canonical_url(PAGE) == PAGE


def test_other_query_parameters_are_kept_and_tracking_ones_dropped_around_them() -> None:
    url = "https://example.com/search?utm_source=x&q=drones&fbclid=1&page=2&xtor=AD-1"
    assert canonical_url(url) == "https://example.com/search?page=2&q=drones"


def test_parameters_that_select_a_page_make_different_pages() -> None:
    first = canonical_url("https://example.com/news?id=3&utm_source=rss")
    second = canonical_url("https://example.com/news?id=4&utm_source=rss")
    assert first == "https://example.com/news?id=3"
    assert first != second
    assert article_id(first) != article_id(second)


def test_fragment_is_dropped() -> None:
    assert canonical_url(f"{PAGE}#reprise") == PAGE
    assert canonical_url(f"{PAGE}?utm_medium=feed#comments") == PAGE


def test_host_and_scheme_case_are_folded_but_path_case_is_kept() -> None:
    assert canonical_url("HTTPS://WWW.LeMonde.FR/International/A.html") == "https://www.lemonde.fr/International/A.html"
    # Paths are case-sensitive on most servers: two spellings may be two pages.
    assert canonical_url("https://example.com/A") != canonical_url("https://example.com/a")


def test_default_port_and_parameter_order_do_not_change_the_page() -> None:
    assert canonical_url("https://example.com:443/a?b=1&a=2") == canonical_url("https://example.com/a?a=2&b=1")


def test_surrounding_whitespace_from_feeds_is_ignored() -> None:
    assert canonical_url(f"  {PAGE}\n") == PAGE


@pytest.mark.parametrize(
    "variant",
    [
        f"{PAGE}?utm_source=rss&utm_medium=feed",
        f"{PAGE}#reprise",
        "HTTPS://WWW.LEMONDE.FR/international/article/2025/07/01/izhevsk_6617.html?xtor=RSS-1",
        f" {PAGE}?fbclid=abc#top ",
    ],
)
def test_equivalent_urls_get_the_same_article_id(variant: str) -> None:
    assert article_id(canonical_url(variant)) == article_id(canonical_url(PAGE))


def test_article_id_is_pinned() -> None:
    # Pinned on purpose: the id is the document id in the index and the dedup key in Redis. A change of scheme
    # silently re-ids every stored article, so it must be a deliberate, migrated change, not a refactor.
    assert article_id(PAGE) == "a1d5b6552b5d6886bc55"


def test_article_id_shape() -> None:
    ident = article_id(PAGE)
    assert len(ident) == 20
    assert all(c in "0123456789abcdef" for c in ident)


def test_different_pages_get_different_ids() -> None:
    urls = [
        PAGE,
        PAGE.replace("izhevsk_6617", "izhevsk_6618"),
        "https://www.lefigaro.fr/international/guerre-en-ukraine-20241122",
        "https://www.lemonde.fr/international/",
    ]
    ids = {article_id(canonical_url(u)) for u in urls}
    assert len(ids) == len(urls)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.LeMonde.fr/a", "lemonde.fr"),
        ("https://fr.euronews.com/green/2024/04/30/x", "fr.euronews.com"),
        ("http://127.0.0.1:8765/pages/izhevsk-attaque-drones.html", "127.0.0.1"),
        ("https://wwwhat.example/x", "wwwhat.example"),
        ("not a url", ""),
    ],
)
def test_domain_of(url: str, domain: str) -> None:
    assert domain_of(url) == domain


def test_demo_feeds_link_the_same_article_twice_under_one_id() -> None:
    """The demo's two French feeds link the Izhevsk article with tracking parameters and with a fragment."""
    source = FeedSource(id="demo", url="http://127.0.0.1:8765/", name="demo")
    links = [
        entry.url.replace("{base}", "http://127.0.0.1:8765")
        for name in ("actu-fr.xml", "relais-fr.xml")
        for entry in parse_feed(Path(DEMO_ROOT, "feeds", name).read_bytes(), source)
        if "izhevsk-attaque-drones" in entry.url
    ]
    assert len(links) == 2
    assert links[0] != links[1]
    assert {canonical_url(u) for u in links} == {"http://127.0.0.1:8765/pages/izhevsk-attaque-drones.html"}
    assert len({article_id(canonical_url(u)) for u in links}) == 1
