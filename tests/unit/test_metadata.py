"""What a page says about itself: headline rules, canonical URL, dates, authors, paywall, charset."""

from __future__ import annotations

from datetime import UTC, datetime

import lxml.html
import pytest

from ingest import authors, metadata
from ingest.extract import decode_html, extract_article, feed_text
from ingest.fetch import sniff
from ingest.models import FeedEntry

URL = "https://www.example.com/politique/2026/11/23/budget"


def _tree(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Russia hits Kyiv with a missile - National | Globalnews.ca", "Russia hits Kyiv with a missile"),
        ("Sweden tells households how to survive | World News | Metro News", "Sweden tells households how to survive"),
        ("Drusen fordern Teilhabe statt Schutz - News - SRF", "Drusen fordern Teilhabe statt Schutz"),
        ("Le Monde - Un budget sous tension", "Un budget sous tension"),
        ("Biden - Trump: the debate in five moments", "Biden - Trump: the debate in five moments"),
        ("A headline without a site", "A headline without a site"),
    ],
)
def test_strip_site_name(title: str, expected: str) -> None:
    assert metadata.strip_site_name(title, ["Globalnews", "Metro News", "SRF", "Le Monde", "example.com"]) == expected


def test_visible_headline_without_its_kicker_or_screen_reader_text() -> None:
    html = (
        '<html><head><meta property="og:title" '
        'content="Iranischer Angriff auf Israel: «Die Zurückhaltung hat viel mit den USA zu tun»"></head><body>'
        '<h1><span class="article-title__overline">Eskalation</span><span class="h-offscreen"> - </span>'
        '<span class="article-title__text">«Die Zurückhaltung hat viel mit den USA zu tun»</span></h1></body></html>'
    )
    tree = _tree(html)
    assert metadata.pick_title(tree, metadata.read_page(tree, URL)) == "«Die Zurückhaltung hat viel mit den USA zu tun»"


def test_an_h1_that_is_the_site_logo_is_not_the_headline() -> None:
    html = (
        "<html><head><title>Deux ans en Macronie : dix enquêtes - regards.fr</title>"
        '<meta property="og:site_name" content="regards.fr"></head>'
        "<body><h1>regards.fr</h1><h2>Deux ans en Macronie</h2></body></html>"
    )
    tree = _tree(html)
    assert metadata.pick_title(tree, metadata.read_page(tree, URL)) == "Deux ans en Macronie : dix enquêtes"


def test_seo_heading_is_skipped_for_the_metadata_headline() -> None:
    html = (
        '<html><head><meta property="og:title" content="Chiesa ruft zum Widerstand auf"></head><body>'
        '<h1 class="Breadcrumbs_seotitle">Parteitag: Chiesa ruft zum Widerstand auf</h1></body></html>'
    )
    tree = _tree(html)
    assert metadata.pick_title(tree, metadata.read_page(tree, URL)) == "Chiesa ruft zum Widerstand auf"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<link rel="canonical" href="/politique/budget">', "https://www.example.com/politique/budget"),
        ('<meta property="og:url" content="https://m.example.com/budget">', "https://m.example.com/budget"),
        # Another site's URL (syndication, or a trick) and the home page (a template bug) are not believed.
        ('<link rel="canonical" href="https://other.org/budget">', URL),
        ('<link rel="canonical" href="https://www.example.com/">', URL),
        ('<link rel="canonical" href="javascript:alert(1)">', URL),
    ],
)
def test_canonical_url(head: str, expected: str) -> None:
    tree = _tree(f"<html><head>{head}</head><body><p>x</p></body></html>")
    assert metadata.pick_canonical(metadata.read_page(tree, URL + "?utm_source=rss")) == expected


def test_dates_from_json_ld_then_meta_and_never_in_the_future() -> None:
    html = (
        '<html><head><script type="application/ld+json">'
        '{"@graph": [{"@type": "WebPage", "datePublished": "2020-01-01"},'
        ' {"@type": ["NewsArticle"], "datePublished": "2024-08-08T08:00Z", "dateModified": "2024-08-09T10:00Z"}]}'
        '</script><meta property="article:published_time" content="Fri, 09 Aug 2024 07:00:00 +0200"></head>'
        "<body></body></html>"
    )
    tree = _tree(html)
    facts = metadata.read_page(tree, URL)
    candidates = list(metadata.published_candidates(tree, facts))
    assert candidates[0] == (datetime(2024, 8, 8, 8, 0, tzinfo=UTC), "json_ld")
    assert candidates[1][1] == "meta" and candidates[1][0].isoformat() == "2024-08-09T07:00:00+02:00"
    assert candidates[-1][0].year == 2020  # the WebPage date comes last
    assert metadata.modified_date(facts) == datetime(2024, 8, 9, 10, 0, tzinfo=UTC)
    assert metadata.not_future(candidates[0][0], datetime(2024, 8, 8, 8, 10, tzinfo=UTC))
    assert not metadata.not_future(candidates[0][0], datetime(2024, 8, 8, 7, 0, tzinfo=UTC))


def test_authors_from_json_ld_references_and_dublin_core() -> None:
    html = (
        '<html><head><script type="application/ld+json">'
        '{"@graph": [{"@type": "NewsArticle", "author": [{"@id": "#p1"}, {"@type": "Person", "name": "By Jon King"}]},'
        ' {"@id": "#p1", "@type": "Person", "name": "Uriel Gadessaud"}]}</script></head><body></body></html>'
    )
    facts = metadata.read_page(_tree(html), URL)
    assert authors.clean_authors(metadata.declared_authors(facts)) == ("Uriel Gadessaud", "Jon King")
    dc = '<meta name="dc.creator" content="You, Xiaoying"><meta name="dc.creator" content="Lenharo, Mariana">'
    facts = metadata.read_page(_tree(f"<html><head>{dc}</head><body></body></html>"), URL)
    assert metadata.declared_authors(facts) == ["Xiaoying You", "Mariana Lenharo"]


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("Autor: Monika Bolliger", ("Monika Bolliger",)),
        ("Par Jeanne Corriveau et Kab Niang", ("Jeanne Corriveau", "Kab Niang")),
        (["Sophie Foster", "sophie-foster"], ("Sophie Foster",)),
        (["Prisma Média", "Marie Merlet"], ("Marie Merlet",)),  # the site's own name, when a person is named
        (["@lemonde", "https://example.com/a", "Michelle de Oliveira"], ("Michelle de Oliveira",)),
    ],
)
def test_clean_authors(raw: list[str] | str, names: tuple[str, ...]) -> None:
    assert authors.clean_authors(raw, ["Prisma Média"]) == names


def test_paywall_markup() -> None:
    for head in (
        '<script type="application/ld+json">{"@type": "NewsArticle", "isAccessibleForFree": "False"}</script>',
        '<script type="application/ld+json">{"@type": "NewsArticle", "hasPart": {"isAccessibleForFree": false}}'
        "</script>",
        '<meta property="article:content_tier" content="locked">',
    ):
        assert metadata.is_paywalled(metadata.read_page(_tree(f"<html><head>{head}</head></html>"), URL)), head
    assert not metadata.is_paywalled(metadata.read_page(_tree("<html><head></head></html>"), URL))


def test_subscription_prompts_are_cut_and_mark_the_page() -> None:
    paragraphs = "".join(f"<p>{'Une phrase assez longue pour compter comme du texte. ' * 4}</p>" for _ in range(4))
    html = f"<html><body><article><h1>Titre</h1>{paragraphs}<p>Pour lire la suite</p><p>Abonnez-vous</p></article>"
    got = extract_article(html + "</body></html>", URL)
    assert got.paywalled
    assert "Pour lire la suite" not in got.text and "Abonnez-vous" not in got.text


@pytest.mark.parametrize(
    ("body", "declared", "expected"),
    [
        ("été".encode("cp1252"), "iso-8859-1", "été"),
        ("été".encode(), "iso-8859-1", "été"),  # a server default that lies: the bytes are UTF-8
        (b'<meta charset="windows-1252">' + "été".encode("cp1252"), None, '<meta charset="windows-1252">été'),
        (b"\xef\xbb\xbf" + "été".encode(), "iso-8859-1", "été"),  # a byte-order mark wins
        ("Ünïcödé".encode("utf-16"), None, "Ünïcödé"),
        ("\u20ac".encode("cp1252"), "latin-1", "\u20ac"),  # WHATWG: latin-1 means windows-1252
    ],
)
def test_decode_html(body: bytes, declared: str | None, expected: str) -> None:
    assert decode_html(body, declared) == expected


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"%PDF-1.7 ...", "a PDF document"),
        (b"\x89PNG\r\n", "a PNG image"),
        (b"\n  <!DOCTYPE html><html>", "HTML"),
        (b"\xef\xbb\xbf<html lang=fr>", "HTML"),
        (b"plain words", "not HTML"),
    ],
)
def test_sniff(body: bytes, what: str) -> None:
    assert sniff(body) == what


def test_feed_text_is_the_summary_without_markup_else_the_title() -> None:
    entry = FeedEntry(feed_id="f", feed_name="F", url=URL, title="Le titre", summary="<p>Un <b>résumé</b></p>")
    assert feed_text(entry) == "Un résumé"
    assert feed_text(entry.model_copy(update={"summary": None})) == "Le titre"
    assert feed_text(entry.model_copy(update={"summary": None, "title": None})) == ""


# ---------------------------------------------------------------- issue 21: title agreement, author cleaning


def _title(html: str) -> str | None:
    tree = _tree(html)
    return metadata.pick_title(tree, metadata.read_page(tree, URL))


def test_title_loses_an_undeclared_site_name_that_another_candidate_does_without() -> None:
    # No og:site_name and a brand the domain does not spell: the og:title shows where the headline ends.
    html = (
        '<html><head><meta property="og:title" content="Harbour bridge reopens after repairs :: The Evening Courier">'
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Harbour bridge reopens after '
        'repairs"}</script></head><body></body></html>'
    )
    assert _title(html) == "Harbour bridge reopens after repairs"


def test_title_with_the_site_name_first_and_a_middle_dot() -> None:
    html = (
        "<html><head><title>The Evening Courier · Harbour bridge reopens after repairs</title></head>"
        "<body><article><h1>Harbour bridge reopens after repairs</h1></article></body></html>"
    )
    tree = _tree(html)
    facts = metadata.read_page(tree, URL)
    assert metadata._agree_on_suffix([facts.html_title], ["Harbour bridge reopens after repairs"]) == [
        "Harbour bridge reopens after repairs"
    ]


def test_an_unmarked_kicker_run_into_the_h1_is_left_out() -> None:
    html = (
        '<html><head><meta property="og:title" content="Council votes to close the old library"></head>'
        "<body><h1><span>Town hall</span> Council votes to close the old library</h1></body></html>"
    )
    assert _title(html) == "Council votes to close the old library"


def test_the_h1_inside_the_article_wins_over_a_promo_h1() -> None:
    # Both headings are about as close to the declared title; the one in <article> is the page's own.
    html = (
        '<html><head><meta property="og:title" content="Storm closes schools across the north"></head><body>'
        "<div><h1>Storm closes schools across the north tonight</h1></div>"
        "<article><h1>Storm closes schools across the north today</h1></article></body></html>"
    )
    assert _title(html) == "Storm closes schools across the north today"


def test_an_h1_matching_a_declared_title_keeps_its_printed_spelling() -> None:
    # A kicker-and-headline <h1> comes first; the <h1> that is the declared title (curly quotes) wins.
    html = (
        """<html><head><meta property="og:title" content="Mayor says 'no' to the new stadium plan"></head>"""
        "<body><h1><b>City hall</b> Mayor says 'no' to the new stadium plan</h1>"
        "<h1>Mayor says \u2018no\u2019 to the new stadium plan</h1></body></html>"
    )
    assert _title(html) == "Mayor says \u2018no\u2019 to the new stadium plan"


def test_site_name_of_a_second_level_country_domain() -> None:
    facts = metadata.read_page(_tree("<html><head></head><body></body></html>"), "https://www.courier.co.uk/a/b")
    assert "courier" in facts.site_names and "co" not in facts.site_names


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("Por María López y Juan Pérez", ("María López", "Juan Pérez")),
        ("Di Mario Rossi", ("Mario Rossi",)),
        ("Di Maria", ("Di Maria",)),  # a surname, not a byline word
        ("Av Anna Svensson och Erik Berg", ("Anna Svensson", "Erik Berg")),
        ("Przez Jan Kowalski", ("Jan Kowalski",)),
        ("Door Piet Jansen en Jan de Vries", ("Piet Jansen", "Jan de Vries")),
        ("Written by Jane Doe", ("Jane Doe",)),
        ("Jane Doe, Political Correspondent", ("Jane Doe",)),
        ("Jane Doe Senior Reporter", ("Jane Doe",)),
        ("Jane Doe - Senior Reporter", ("Jane Doe",)),
        ("Jane Doe, in Kyiv", ("Jane Doe",)),
        ("Courier staff reporter", ("Courier staff reporter",)),  # a byline that is only a newsroom stays
        ("Jane Doe, John Roe", ("Jane Doe", "John Roe")),
        ("Doe, Jane", ("Doe, Jane",)),
        ("Jane Doejane.doe@example.org", ("Jane Doe",)),
        ("Jane Doe jane.doe@example.org", ("Jane Doe",)),
        ("Jane Doe 12 March 2024", ("Jane Doe",)),
        ("Jane Doe12.03.2024", ("Jane Doe",)),
        ("Jane DoeUpdated 3 hours ago", ("Jane Doe",)),
        ("Loïc Le Clerc", ("Loïc Le Clerc",)),
        ("Erika Muster (emu)", ("Erika Muster",)),
        ("JANE DOE; Jane Doe", ("Jane Doe",)),
    ],
)
def test_clean_authors_bylines_roles_dates_emails(raw: str, names: tuple[str, ...]) -> None:
    assert authors.clean_authors(raw) == names


def test_byline_links_inside_the_article_only() -> None:
    html = (
        '<html><body><aside><a rel="author" href="/a/x">Other Writer</a></aside><article>'
        '<p class="byline">By <a rel="author" href="/a/jd">Jane Doe</a></p>'
        '<span itemprop="author"><span itemprop="name">John Roe</span></span></article></body></html>'
    )
    assert metadata.byline_authors(_tree(html)) == ["Jane Doe", "John Roe"]


def test_links_to_the_writers_pages_are_the_byline_when_no_markup_names_one() -> None:
    html = (
        '<html><body><aside><a href="/staff/other-writer/">Other Writer</a></aside><main><article><dl>'
        '<dt>Auteur</dt><dd><a href="https://example.org/fr/staff/anne-lea-mercier/">\n Anne-Léa Mercier</a></dd>'
        '<dt>Section</dt><dd><a href="/people/politics/">People</a> <a href="/author/jane-doe/">More by Jane</a>'
        "</dd></dl></article></main></body></html>"
    )
    assert metadata.byline_authors(_tree(html)) == ["Anne-Léa Mercier"]
    # markup naming the authors comes first
    marked = html.replace("<dl>", '<span itemprop="author">John Roe</span><dl>')
    assert metadata.byline_authors(_tree(marked)) == ["John Roe"]


def test_a_declared_title_keeps_the_separator_the_h1_lost_after_its_kicker() -> None:
    html = (
        '<html><head><meta property="og:title" content="Harbour / Bridge reopens after two years of repairs">'
        "</head><body><h1><span>Harbour</span>Bridge reopens after two years of repairs</h1></body></html>"
    )
    assert _title(html) == "Harbour / Bridge reopens after two years of repairs"


def test_a_site_name_given_by_its_initials_is_stripped() -> None:
    names = ["Evening Courier Gazette", "eveningcourier.example"]  # the domain does not spell "ECG"
    assert metadata.strip_site_name("Harbour bridge reopens after repairs | ECG", names) == (
        "Harbour bridge reopens after repairs"
    )
    assert metadata.strip_site_name("Harbour bridge reopens after repairs - ECG.example", names) == (
        "Harbour bridge reopens after repairs"
    )
    assert metadata.strip_site_name("Harbour bridge reopens - after repairs", ["The Evening Daily"]) == (
        "Harbour bridge reopens - after repairs"
    )


def test_entities_escaped_twice_in_json_ld_are_decoded() -> None:
    html = (
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", "headline": '
        '"Mayor&#039;s &quot;no&quot; to the stadium plan"}</script></head><body></body></html>'
    )
    assert _title(html) == 'Mayor\'s "no" to the stadium plan'


def test_a_title_cut_short_for_social_cards_gives_way_to_the_full_one() -> None:
    html = (
        '<html><head><meta property="og:title" content="Harbour bridge reopens after two years...">'
        "<title>Harbour bridge reopens after two years of repairs</title></head><body></body></html>"
    )
    assert _title(html) == "Harbour bridge reopens after two years of repairs"
