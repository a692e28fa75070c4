"""Dedup, the pure part: the normalised text and its hash, fingerprints and keywords of a text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import shared_fixtures

from ingest.config import DedupSettings
from ingest.dedup import (
    ClusterInput,
    content_hash,
    cosine,
    decide,
    entry_stamp,
    entry_status,
    fingerprints,
    keywords,
    normalise_text,
    publication_day,
    signature,
    site_of,
    words_of,
)
from ingest.embedded.services import DEMO_ROOT
from ingest.eval.dedup_sets import make_copies, paragraphs
from ingest.extract import extract_article
from ingest.models import FeedEntry, Mark, text_key


@pytest.fixture(scope="module")
def seed_text() -> str:
    (seed,) = sorted((shared_fixtures() / "seed").glob("*.txt"))
    return seed.read_text(encoding="utf-8")


def test_normalise_text_folds_case_accents_spacing_and_punctuation() -> None:
    assert normalise_text("  L’Été à  Paris,\u00a0déjà !\n") == "l ete a paris deja"
    assert normalise_text("États-Unis") == "etats unis"
    assert normalise_text("") == ""


@pytest.mark.parametrize(
    "variant",
    [
        "une récente attaque de drone ukrainienne a causé la mort de trois personnes",
        "UNE RÉCENTE ATTAQUE DE DRONE UKRAINIENNE A CAUSÉ LA MORT DE TROIS PERSONNES",
        "Une recente attaque de drone ukrainienne a cause la mort de trois personnes",
        "Une  récente\tattaque de drone\nukrainienne a causé la mort\u00a0de trois personnes",
        "Une récente attaque de drone ukrainienne, a causé « la mort » de trois personnes...",
        "Une re\u0301cente attaque de drone ukrainienne a cause\u0301 la mort de trois personnes",  # decomposed accents
    ],
)
def test_copies_hash_alike(variant: str) -> None:
    original = "Une récente attaque de drone ukrainienne a causé la mort de trois personnes."
    assert normalise_text(variant) == normalise_text(original)
    assert content_hash(variant) == content_hash(original)


@pytest.mark.parametrize(
    "changed",
    [
        "Une récente attaque de drone ukrainienne a causé la mort de quatre personnes.",
        "Une récente attaque de drone russe a causé la mort de trois personnes.",
        "Une récente attaque de drone ukrainienne a causé la mort de trois personnes. Mise à jour.",
        "Une récente attaque de drone ukrainienne a causé la mort de 3 personnes.",
    ],
)
def test_a_changed_word_changes_the_hash(changed: str) -> None:
    original = "Une récente attaque de drone ukrainienne a causé la mort de trois personnes."
    assert normalise_text(changed) != normalise_text(original)
    assert content_hash(changed) != content_hash(original)


def test_seed_article_reformatted_is_the_same_text(seed_text: str) -> None:
    reformatted = " ".join(seed_text.upper().split()).replace("'", "’")
    assert content_hash(reformatted) == content_hash(seed_text)
    assert content_hash(seed_text.replace("trois personnes", "deux personnes", 1)) != content_hash(seed_text)


def test_demo_syndicated_copy_has_the_same_hash() -> None:
    """The demo's regional site republishes the Izhevsk story with its own headline, menu and footer."""
    pages = DEMO_ROOT / "pages"
    original = extract_article((pages / "izhevsk-attaque-drones.html").read_bytes(), "http://a.example/izhevsk")
    copy = extract_article((pages / "reprise-izhevsk-drones.html").read_bytes(), "http://b.example/reprise")
    assert original.title != copy.title
    assert content_hash(original.text) == content_hash(copy.text)


SETTINGS = DedupSettings()


def test_fingerprints_of_a_text_cut_short_are_a_subset(seed_text: str) -> None:
    words = normalise_text(seed_text).split()
    full = fingerprints(words, SETTINGS)
    assert 8 <= len(full) <= SETTINGS.max_fingerprints
    for cut in (60, 120, 200):
        assert set(fingerprints(words[:cut], SETTINGS)) <= set(full)
    # A text of different words shares none.
    other = normalise_text("Le merlu de l'Atlantique Nord a été sauvé de l'extinction par les quotas de pêche "
                           "européens, selon un rapport publié mardi par le Conseil international.").split()
    assert not set(fingerprints(other * 3, SETTINGS)) & set(full)


def test_each_copy_keeps_most_fingerprints(seed_text: str) -> None:
    original = ClusterInput("seed", seed_text, lang="fr")
    mine = set(signature(seed_text, "fr", SETTINGS).fingerprints)
    for copy in make_copies(original, "Izhevsk"):
        theirs = signature(copy.record.text, "fr", SETTINGS).fingerprints
        assert content_hash(copy.record.text) != content_hash(seed_text), copy.how
        shared = len(mine & set(theirs))
        assert shared >= SETTINGS.min_shared and shared / len(theirs) >= SETTINGS.duplicate_containment, copy.how


def test_keywords_prefer_rare_words_and_are_deterministic(seed_text: str) -> None:
    words = normalise_text(seed_text).split()
    first = keywords(words, "fr", 32)
    assert first == keywords(words, "fr", 32)
    assert len(first) == 32
    assert [w for _, w in first] == sorted((w for _, w in first), reverse=True)
    # Stop words never count; a rare name outweighs a common word.
    common = dict(keywords(["maison", "maison", "maison", "izhevsk"], "fr", 8))
    assert len(common) == 2
    heavy = [w for _, w in keywords(["maison", "izhevsk"], "fr", 8)]
    assert heavy[0] > heavy[1]
    assert keywords(["le", "la", "les", "de", "des", "et"], "fr", 8) == ()


def test_cosine_of_keywords(seed_text: str) -> None:
    a = signature(seed_text, "fr", SETTINGS).keywords
    assert cosine(a, a) == pytest.approx(1.0)
    half = signature(" ".join(paragraphs(seed_text)[:2]), "fr", SETTINGS).keywords
    assert SETTINGS.story_similarity < cosine(a, half) < 1.0
    other = signature("Russia hits Kyiv with a ballistic missile overnight, officials say.", "en", SETTINGS).keywords
    assert cosine(a, other) < SETTINGS.story_similarity
    assert cosine((), a) == 0.0


def test_packed_signature_layout() -> None:
    sig = signature("Une attaque de drones vise l'usine d'Izhevsk, en Russie, selon les autorités locales "
                    "qui parlent de trois morts et de plusieurs blessés dans la nuit de mardi.", "fr", SETTINGS)
    assert len(sig.packed()) == 4 * len(sig.fingerprints) + 5 * len(sig.keywords)


HASH = content_hash("Une attaque de drones vise l'usine d'Izhevsk.")
OTHER = content_hash("Le merlu de l'Atlantique Nord est sauvé.")


def test_entry_status_from_the_mark_and_the_feeds_date() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    fetched = int(now.timestamp()) - 3600  # an hour ago: a re-dated entry is due again (recheck_minutes 60)
    assert entry_status(None, 0, now, SETTINGS) == "new"
    seen = Mark(text_key(HASH), stamp=1_795_000_000, checked_at=fetched)
    assert entry_status(seen, 1_795_000_000, now, SETTINGS) == "seen"
    assert entry_status(seen, 1_794_000_000, now, SETTINGS) == "seen"  # an older date is no update
    assert entry_status(seen, 0, now, SETTINGS) == "seen"  # the feed gives no date any more
    assert entry_status(seen, 1_795_000_001, now, SETTINGS) == "updated"
    # Re-dated again soon after the last fetch (a feed that re-dates at every poll): later, not at each poll.
    assert entry_status(seen, 1_795_000_001, now - timedelta(minutes=1), SETTINGS) == "update_later"
    entry = FeedEntry(feed_id="f", feed_name="F", url="http://x.example/a",
                      published_at=datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert entry_stamp(entry) == int(datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp())
    assert entry_stamp(entry.model_copy(update={"published_at": None})) == 0
    # Atom keeps <published> and moves <updated>: the later of the two is the entry's date.
    updated = entry.model_copy(update={"updated_at": datetime(2026, 11, 23, 15, tzinfo=UTC)})
    assert entry_stamp(updated) == int(datetime(2026, 11, 23, 15, tzinfo=UTC).timestamp())
    assert entry_stamp(updated.model_copy(update={"published_at": None})) == entry_stamp(updated)


@pytest.mark.parametrize(
    ("mark", "owner", "expected"),
    [
        (None, None, ("new", "a", None)),
        (None, "a", ("new", "a", None)),  # its own text, committed before (a retry)
        (None, "b", ("duplicate", "b", "b")),
        (Mark(text_key(HASH), 5, 6, "s"), "a", ("unchanged", "s", None)),
        (Mark(text_key(OTHER), 5, 6, "s"), None, ("updated", "s", None)),  # keeps its story
        (Mark(text_key(OTHER), 5, 6, "s"), "b", ("updated", "s", None)),  # and is indexed, whoever had the text
        # a URL only seen as a copy of b's text now has a text of its own / b's new text
        (Mark(text_key(OTHER), 5), None, ("new", "a", None)),
        (Mark(text_key(OTHER), 5), "b", ("duplicate", "b", "b")),
        (Mark(text_key(HASH), 5), "b", ("unchanged", "a", None)),
    ],
)
def test_decide_the_exact_level(mark: Mark | None, owner: str | None, expected: tuple[str, str, str | None]) -> None:
    decision = decide("a", HASH, mark, owner)
    assert (decision.kind, decision.story_id, decision.duplicate_of) == expected


def test_a_mark_keeps_64_bits_of_the_hash() -> None:
    assert text_key(HASH) == HASH[:16] and len(HASH) == 40
    assert Mark("k", 7, 9, "s").seen_only() == Mark("k", 7, 9)


QUAKE_ZH = "北京周二发生强烈地震，造成十人死亡，数百人受伤。救援人员正在倒塌的建筑物废墟中搜寻幸存者。"
QUAKE_ZH_OTHER_WORDS = "中国首都北京周二发生地震，至少十人死亡。救援队在倒塌的建筑物中寻找幸存者。"
RATES_ZH = "欧洲中央银行周四宣布再次加息，以应对持续的通货膨胀，市场反应平淡。"


def test_scripts_without_spaces_are_cut_into_character_bigrams() -> None:
    assert words_of("北京发生地震，Tokyo 東京") == ["北京", "京发", "发生", "生地", "地震", "tokyo", "東京"]
    assert words_of("กรุงเทพ") == ["กร", "รง", "งเ", "เท", "ทพ"]  # its combining vowel dropped, like accents
    assert words_of("Une attaque à Izhevsk") == normalise_text("Une attaque à Izhevsk").split()


@pytest.mark.parametrize("language", ["zh", "ja", "ko", "th", "he", "xx", None])
def test_every_language_has_a_signature(language: str | None) -> None:
    """No language is refused: wordfreq's lists are read without the tokenizers (jieba, MeCab) some need, and a
    language without a list weighs every word alike."""
    sig = signature(QUAKE_ZH + " 서울에서 지진 กรุงเทพ", language, SETTINGS)
    assert sig.keywords and sig.fingerprints


def test_chinese_stories_by_bigrams() -> None:
    quake, retold, rates = (signature(t, "zh", SETTINGS).keywords for t in (QUAKE_ZH, QUAKE_ZH_OTHER_WORDS, RATES_ZH))
    assert cosine(quake, retold) > 0.1 > cosine(quake, rates)
    copy = signature("新华社北京电 " + QUAKE_ZH * 3, "zh", SETTINGS).fingerprints
    assert set(signature(QUAKE_ZH * 3, "zh", SETTINGS).fingerprints) <= set(copy)


def test_publication_day() -> None:
    assert publication_day(None) == 0
    assert publication_day(datetime(2025, 7, 1, 23, 59, tzinfo=UTC)) == 20270
    assert publication_day(datetime(1970, 1, 1, tzinfo=UTC)) == 0  # unknown, not day 0


def test_site_of_a_url() -> None:
    assert site_of("https://www.lemonde.fr/a") == site_of("http://lemonde.fr/b?x=1") != site_of("https://lefigaro.fr/a")
    assert 1 <= site_of("https://lemonde.fr/") <= 65535
    assert site_of(None) == site_of("") == site_of("not a url") == 0
