"""OPML import and export of the feed registry, and `ingest feeds` as a person runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest.embedded.services import DEMO_ROOT
from ingest.errors import ConfigError
from ingest.feeds import dump_feeds, load_feeds, merge_feeds, parse_feeds, parse_opml, to_opml
from ingest.models import FeedSource

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="France" title="France">
      <outline type="rss" text="Le Monde - International" xmlUrl="https://www.lemonde.fr/international/rss_full.xml"/>
      <outline type="rss" text="France 24" xmlUrl="https://www.france24.com/fr/rss" language="fr"/>
    </outline>
    <outline type="rss" title="CNN" text="CNN" xmlUrl="http://rss.cnn.com/rss/edition.rss" category="world, us"/>
    <outline type="rss" title="CNN" text="CNN again" xmlUrl="http://rss.cnn.com/rss/edition_world.rss"/>
    <outline text="a folder without feeds"/>
  </body>
</opml>
"""


def test_opml_import_reads_nested_outlines_as_tags() -> None:
    feeds = parse_opml(OPML, "subs.opml")
    assert [f.id for f in feeds] == ["le-monde-international", "france-24", "cnn", "cnn-2"]
    assert feeds[0].tags == ("France",) and feeds[0].name == "Le Monde - International"
    assert feeds[1].language == "fr"
    assert feeds[2].tags == ("world", "us")


def test_opml_round_trip_keeps_the_registry() -> None:
    demo = load_feeds(DEMO_ROOT / "feeds.yaml")
    back = parse_opml(to_opml(demo).encode("utf-8"), "export")
    assert [(f.url, f.name, f.language, f.tags) for f in back] == [(f.url, f.name, f.language, f.tags) for f in demo]
    assert parse_feeds(yaml.safe_load(dump_feeds(demo)), "dump") == demo


def test_merge_adds_only_new_urls_with_unique_ids() -> None:
    existing = [FeedSource(id="cnn", url="http://rss.cnn.com/rss/edition.rss", name="CNN")]
    merged, added = merge_feeds(existing, parse_opml(OPML, "subs.opml"))
    assert added == 3
    assert len({f.id for f in merged}) == len(merged) == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<opml><head/></opml>", "not an OPML document"),
        (b"<rss><channel/></rss>", "not an OPML document"),
        (b"<opml><body><outline", "not valid OPML/XML"),
        (b'<opml><body><outline text="x" xmlUrl="ftp://example.org/feed"/></body></opml>', "must start with http"),
    ],
)
def test_bad_opml_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_opml(data, "bad.opml")


def test_entity_expansion_cannot_blow_up_memory() -> None:
    lol = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<opml><body><outline text="&lol9;" xmlUrl="https://example.org/feed"/></body></opml>"""
    # expat refuses the amplification: a ConfigError, not gigabytes of "lol".
    with pytest.raises(ConfigError, match="not valid OPML/XML"):
        parse_opml(lol, "lol.opml")


def _ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], capture_output=True, text=True, check=False)


def test_feeds_commands(tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    registry = tmp_path / "feeds.yaml"
    imported = _ingest("feeds", "import", str(opml), "--feeds", str(registry))
    assert imported.returncode == 0, imported.stderr
    assert "4 feed(s) read, 4 added" in imported.stdout
    again = _ingest("feeds", "import", str(opml), "--feeds", str(registry))
    assert "0 added" in again.stdout
    check = _ingest("feeds", "check", "--feeds", str(registry))
    assert check.returncode == 0 and "4 feed(s), 4 enabled, 3 host(s)" in check.stdout
    exported = _ingest("feeds", "export", "--feeds", str(registry))
    assert exported.stdout.count("<outline ") == 4

    registry.write_text("feeds:\n  - {id: a, url: 'ftp://x', name: A}\n  - {id: b, name: B}\n")
    bad = _ingest("feeds", "check", "--feeds", str(registry))
    assert bad.returncode == 2
    assert "feed #1 (a): url must start with http" in bad.stderr
    assert "feed #2: url: Field required" in bad.stderr
    assert "Traceback" not in bad.stderr
