"""The feed registry (``feeds.yaml``): valid files load, every bad row is named by its number, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.embedded.services import DEMO_ROOT
from ingest.errors import ConfigError
from ingest.feeds import load_feeds, parse_feeds
from ingest.models import FeedSource

GOOD_ROW = """\
  - id: lemonde-international
    name: Le Monde International
    url: https://www.lemonde.fr/international/rss_full.xml
    language: fr
    tags: [presse, international]
"""


def _registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_registry_parses_into_feed_sources(tmp_path: Path) -> None:
    path = _registry(
        tmp_path,
        "feeds:\n"
        + GOOD_ROW
        + """\
  - id: golem
    name: Golem.de
    url: http://rss.golem.de/rss.php?feed=RSS2.0
    enabled: false
""",
    )
    feeds = load_feeds(path)
    assert feeds == [
        FeedSource(
            id="lemonde-international",
            name="Le Monde International",
            url="https://www.lemonde.fr/international/rss_full.xml",
            language="fr",
            tags=("presse", "international"),
        ),
        FeedSource(id="golem", name="Golem.de", url="http://rss.golem.de/rss.php?feed=RSS2.0", enabled=False),
    ]


def test_the_demo_registry_is_valid() -> None:
    feeds = load_feeds(DEMO_ROOT / "feeds.yaml")
    assert [f.id for f in feeds] == ["exemple-actu", "world-wire", "relais-regional", "retired-feed"]
    assert all(f.url.startswith("http://127.0.0.1:") for f in feeds)


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("  - id: no-url\n    name: No URL\n", "feed #2: url: Field required"),
        ("  - id: ftp-feed\n    name: FTP\n    url: ftp://example.com/f.xml\n", "feed #2 (ftp-feed): url must start"),
        ("  - id: relative\n    name: Relative\n    url: /feeds/a.xml\n", "feed #2 (relative): url must start"),
        ("  - id: lemonde-international\n    name: Copy\n    url: https://example.com/rss\n", "feed #2: duplicate id"),
        ("  - just a string\n", "feed #2: row:"),
        ("  - id: typo\n    name: Typo\n    url: https://example.com/rss\n    langage: fr\n", "feed #2: langage:"),
        ("  - name: No id\n    url: https://example.com/rss\n", "feed #2: id: Field required"),
    ],
    ids=["missing-url", "non-http-url", "relative-url", "duplicate-id", "not-a-mapping", "unknown-key", "missing-id"],
)
def test_bad_row_is_named_by_number(tmp_path: Path, bad_row: str, expected: str) -> None:
    path = _registry(tmp_path, "feeds:\n" + GOOD_ROW + bad_row)
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_every_bad_row_gets_its_own_line(tmp_path: Path) -> None:
    path = _registry(
        tmp_path,
        "feeds:\n"
        + "  - id: no-url\n    name: No URL\n"
        + GOOD_ROW
        + "  - id: gopher\n    name: Gopher\n    url: gopher://example.com/\n"
        + "  - id: lemonde-international\n    name: Twice\n    url: https://example.com/rss\n",
    )
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert "feed #1: url" in lines[0]
    assert "feed #3 (gopher)" in lines[1]
    assert "feed #4: duplicate id 'lemonde-international'" in lines[2]


@pytest.mark.parametrize(
    "text",
    ["feeds: https://example.com/rss\n", "- id: a\n  url: https://example.com/rss\n", "{}\n", ""],
    ids=["feeds-not-a-list", "top-level-list", "no-feeds-key", "empty-file"],
)
def test_registry_without_a_feeds_list(tmp_path: Path, text: str) -> None:
    path = _registry(tmp_path, text)
    with pytest.raises(ConfigError, match=r"expected a top-level 'feeds:' list") as info:
        load_feeds(path)
    assert str(path) in str(info.value)


def test_parse_feeds_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^registry from env: feed #1: url: Field required$"):
        parse_feeds({"feeds": [{"id": "a", "name": "A"}]}, "registry from env")


def test_missing_file_names_the_path_and_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "feeds.yaml"
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    message = str(info.value)
    assert str(path) in message
    assert "INGEST_FEEDS__PATH" in message
    assert "\n" not in message


def test_invalid_yaml_names_the_path(tmp_path: Path) -> None:
    path = _registry(tmp_path, "feeds:\n  - id: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_feeds(path)
    assert str(path) in str(info.value)
