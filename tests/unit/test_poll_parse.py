"""parse_feed on real feed snapshots: entry counts, links, readable titles in every encoding, and non-feeds."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_fixtures

from ingest.embedded.services import DEMO_ROOT
from ingest.errors import PermanentError
from ingest.models import FeedSource
from ingest.poll import parse_feed

FEEDS = shared_fixtures() / "feeds"
INDEX: list[dict[str, Any]] = json.loads((FEEDS / "index.json").read_text(encoding="utf-8"))
JSON_FEED = "misc/npr-technology-jsonfeed.json"
# parse_feed reads published_parsed then updated_parsed itself; feedparser's own fallback (and its warning about
# removing it) changes nothing here.
pytestmark = pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")

SOURCE = FeedSource(id="fixture", url="https://feeds.example/fixture.xml", name="Fixture")

# Entries that feedparser counts (index.json's n_entries) but that carry no link: parse_feed drops them, since an
# entry without a URL cannot be fetched. Checked against the file in test_entries_without_a_link_are_real.
ENTRIES_WITHOUT_LINK = {"miniflux/no_encoding_ISO-8859-1.xml": 1}

# Text that only shows when the bytes were decoded right: the snapshots in a legacy encoding.
KNOWN_TITLES = {
    "miniflux/encoding_ISO-8859-1.xml": "Wochenrückblick: Wilder Westen, buntes Handy, nutzloses Siegel",
    "miniflux/encoding_WINDOWS-1251.xml": "Цитата #17703",
    "miniflux/no_encoding_ISO-8859-1.xml": "L'enfant doué : quand trop comprendre... empêche parfois de comprendre",
}
# What UTF-8 read as Latin-1 / CP1252 (or a lossy decode) looks like.
MOJIBAKE = ("Ã", "Â", "â€", "Ð", "Ñ", "\ufffd")


def _xml_feeds() -> list[Any]:
    params = []
    for row in INDEX:
        params.append(pytest.param(row, id=row["file"]))
    return params


def _expected_entries(row: dict[str, Any]) -> int:
    if row["file"] == JSON_FEED:
        return len(json.loads((FEEDS / JSON_FEED).read_text(encoding="utf-8"))["items"])
    return int(row["n_entries"]) - ENTRIES_WITHOUT_LINK.get(row["file"], 0)


def _raw_titles(row: dict[str, Any]) -> list[str]:
    """Entry titles read straight from the file with the encoding the index records, no feed parser involved."""
    text = (FEEDS / row["file"]).read_bytes().decode(row["encoding"])
    titles = []
    for item in re.findall(r"<(?:item|entry)\b.*?</(?:item|entry)>", text, re.S):
        found = re.search(r"<title[^>]*>(.*?)</title>", item, re.S)
        if found:
            title = re.sub(r"^<!\[CDATA\[(.*)\]\]>$", r"\1", found.group(1).strip(), flags=re.S)
            titles.append(" ".join(html.unescape(title).split()))
    return [t for t in titles if t]


@pytest.mark.parametrize("row", _xml_feeds())
def test_entry_count_and_links(row: dict[str, Any]) -> None:
    entries = parse_feed((FEEDS / row["file"]).read_bytes(), SOURCE)
    assert len(entries) == _expected_entries(row)
    for entry in entries:
        assert entry.url.startswith(("http://", "https://")), entry.url
        assert entry.url == entry.url.strip()
        assert entry.feed_id == "fixture"
        assert entry.feed_name == "Fixture"


def test_entries_without_a_link_are_real() -> None:
    """The one entry of the no-encoding snapshot that parse_feed drops has an empty <title> and <link>."""
    body = (FEEDS / "miniflux/no_encoding_ISO-8859-1.xml").read_bytes()
    assert len(re.findall(rb"<item>", body)) == 10
    assert len(re.findall(rb"<title></title>\s*<link></link>", body)) == 1


@pytest.mark.parametrize("row", [pytest.param(r, id=r["file"]) for r in INDEX if r["file"] != JSON_FEED])
def test_titles_are_decoded(row: dict[str, Any]) -> None:
    entries = parse_feed((FEEDS / row["file"]).read_bytes(), SOURCE)
    titles = [" ".join((e.title or "").split()) for e in entries]
    assert all(titles)
    garbled = [t for t in titles if any(m in t for m in MOJIBAKE)]
    assert garbled == []
    missing = [t for t in _raw_titles(row) if t not in titles]
    # The entry without a link has an empty title, so every non-empty title in the file must come through.
    assert missing == []


@pytest.mark.parametrize(("file", "title"), KNOWN_TITLES.items(), ids=list(KNOWN_TITLES))
def test_legacy_encoding_titles(file: str, title: str) -> None:
    assert title in (FEEDS / file).read_bytes().decode(next(r["encoding"] for r in INDEX if r["file"] == file))
    titles = [e.title for e in parse_feed((FEEDS / file).read_bytes(), SOURCE)]
    assert title in titles


def test_feed_language_is_shortened_and_a_registry_language_wins() -> None:
    body = (FEEDS / "mediacloud/real-cnn.rss").read_bytes()  # <language>en-US</language>
    assert {e.language for e in parse_feed(body, SOURCE)} == {"en"}
    french = SOURCE.model_copy(update={"language": "fr"})
    assert {e.language for e in parse_feed(body, french)} == {"fr"}


def test_dates_are_utc() -> None:
    entries = parse_feed((FEEDS / "misc/lemonde-international-2024-03-27.xml").read_bytes(), SOURCE)
    dated = [e.published_at for e in entries if e.published_at is not None]
    assert len(dated) == len(entries)
    assert all(d.tzinfo is UTC for d in dated)
    assert all(datetime(2024, 3, 1, tzinfo=UTC) < d < datetime(2024, 3, 28, tzinfo=UTC) for d in dated)


ATOM_UPDATED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Sea news</title><id>urn:sea</id><updated>2026-11-23T15:30:00Z</updated>
<entry><title>Hake is back</title><id>urn:sea:1</id><link href="https://sea.example/hake"/>
<published>2026-11-23T08:00:00Z</published><updated>2026-11-23T15:30:00+01:00</updated></entry>
</feed>"""


def test_atom_updated_is_kept_apart_from_published() -> None:
    (entry,) = parse_feed(ATOM_UPDATED, SOURCE)
    assert entry.published_at == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert entry.updated_at == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    # An Atom feed with <updated> only (a real one): the same date for both.
    entries = parse_feed((FEEDS / "miniflux/small_atom.xml").read_bytes(), SOURCE)
    assert entries and all(e.updated_at is not None and e.published_at == e.updated_at for e in entries)
    # JSON Feed: date_modified is the entry's updated_at.
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [
        {"id": "1", "url": "https://sea.example/hake", "date_published": "2026-11-23T08:00:00Z",
         "date_modified": "2026-11-23T15:30:00Z"}]}).encode()
    (item,) = parse_feed(body, SOURCE)
    assert (item.published_at, item.updated_at) == (datetime(2026, 11, 23, 8, tzinfo=UTC),
                                                    datetime(2026, 11, 23, 15, 30, tzinfo=UTC))


def test_json_feed_is_read_into_the_same_entry_model() -> None:
    raw = json.loads((FEEDS / JSON_FEED).read_text(encoding="utf-8"))
    entries = parse_feed((FEEDS / JSON_FEED).read_bytes(), SOURCE)
    assert len(entries) == len(raw["items"]) == 25
    first, item = entries[0], raw["items"][0]
    assert first.url == item["url"] and first.guid == item["id"] and first.title == item["title"]
    assert first.published_at is not None and first.published_at.tzinfo is UTC
    assert first.summary


def test_json_that_is_not_a_json_feed_is_refused() -> None:
    with pytest.raises(PermanentError) as info:
        parse_feed(b'{"version": "1", "items": []}', SOURCE)
    assert info.value.reason == "not_a_feed"
    with pytest.raises(PermanentError) as info:
        parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "items": [', SOURCE)
    assert info.value.reason == "not_a_feed"


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff\xfe garbage \x13\x37" * 20,
        b"plain text, not markup",
        b'{"version": "not a feed", "items": 3}',
        (DEMO_ROOT / "pages" / "izhevsk-attaque-drones.html").read_bytes(),
    ],
    ids=["binary-garbage", "plain-text", "json-object", "html-article-page"],
)
def test_non_feeds_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(PermanentError) as info:
        parse_feed(body, SOURCE)
    assert info.value.reason == "not_a_feed"
    assert info.value.url == SOURCE.url
    assert info.value.detail


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body><p>Accueil</p></body></html>", b"<?xml version='1.0'?><config><a>1</a></config>"],
    ids=["empty", "wellformed-xhtml", "other-xml"],
)
def test_empty_or_wellformed_non_feed_is_refused(body: bytes) -> None:
    with pytest.raises(PermanentError) as info:
        parse_feed(body, SOURCE)
    assert info.value.reason == "not_a_feed"


def test_a_valid_feed_without_items_is_empty_not_an_error() -> None:
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><title>Calme</title><link>https://x.example/</link>"
    body += b"<description>rien</description></channel></rss>"
    assert parse_feed(body, SOURCE) == []


@pytest.mark.parametrize(
    ("name", "pages"),
    [
        (
            "actu-fr.xml",
            [
                "izhevsk-attaque-drones.html?utm_source=rss&utm_medium=feed",
                "lefigaro-ukraine-frappes.html",
                "lemonde-binet-macron.html",
                "euronews-fr-maduro-nike.html",
                "article-retire.html",
            ],
        ),
        ("relais-fr.xml", ["reprise-izhevsk-drones.html", "izhevsk-attaque-drones.html#reprise"]),
        (
            "world-en.xml",
            ["globalnews-kyiv-missile.html", "euronews-en-venezuela-oil.html", "guardian-valencia-fire.html"],
        ),
    ],
)
def test_demo_feeds(name: str, pages: list[str]) -> None:
    body = Path(DEMO_ROOT, "feeds", name).read_bytes()
    entries = parse_feed(body, FeedSource(id="demo", url="http://127.0.0.1:8765/", name="Demo"))
    assert [e.url for e in entries] == [f"{{base}}/pages/{p}" for p in pages]
    assert len(entries) == body.count(b"<item>") + body.count(b"<entry>")
    assert all(e.title for e in entries)
    assert {e.language for e in entries} == {"fr" if name.endswith("-fr.xml") else "en"}


def test_demo_feed_pages_exist_except_the_retired_one() -> None:
    """Every demo entry links a page the fixture server has, but the one that is meant to be gone."""
    served = {p.name.removesuffix(".gz") for p in (DEMO_ROOT / "pages").iterdir()}
    linked = {
        re.split(r"[?#]", e.url.rsplit("/", 1)[1])[0]
        for f in sorted((DEMO_ROOT / "feeds").iterdir())
        for e in parse_feed(f.read_bytes(), FeedSource(id="demo", url="http://127.0.0.1:8765/", name="Demo"))
    }
    assert linked - served == {"article-retire.html"}


def test_demo_feed_entry_fields() -> None:
    body = (DEMO_ROOT / "feeds" / "actu-fr.xml").read_bytes()
    first = parse_feed(body, FeedSource(id="exemple-actu", url="http://127.0.0.1:8765/", name="Exemple Actu"))[0]
    assert first.title == "Izhevsk : une attaque de drones ukrainiens frappe l'usine Kupol et fait trois morts"
    assert first.guid == "exemple-actu-2025-07-01-izhevsk"
    assert first.published_at == datetime(2025, 7, 1, 12, 30, tzinfo=UTC)
    assert first.tags == ("International",)
    assert first.summary is not None
    assert first.summary.startswith("Une attaque de drone ukrainienne")


def test_feed_hints_are_read_from_real_feeds() -> None:
    from ingest.poll import read_feed

    cnn = (shared_fixtures() / "feeds" / "mediacloud" / "real-cnn.rss").read_bytes()
    assert read_feed(cnn, FeedSource(id="cnn", url="https://cnn.example/rss", name="cnn")).hint_minutes == 10
    sy = (b'<?xml version="1.0"?><rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
          b"<channel><title>t</title><sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4"
          b"</sy:updateFrequency><item><title>a</title><link>http://example.org/a</link></item></channel></rss>")
    assert read_feed(sy, FeedSource(id="sy", url="https://x.example/rss", name="sy")).hint_minutes == 360


def test_entity_expansion_in_a_feed_stays_small() -> None:
    """A billion-laughs DOCTYPE: feedparser drops the entity declarations, nothing is expanded."""
    import resource
    import time

    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{levels}]><rss version="2.0"><channel>'
            "<title>&l9;</title><item><title>&l9;</title><link>http://example.org/a</link></item></channel></rss>")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    entries = parse_feed(bomb.encode(), FeedSource(id="b", url="https://x.example/rss", name="b"))
    assert time.perf_counter() - started < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert [len(e.title or "") < 20 for e in entries] == [True]
