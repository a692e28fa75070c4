"""Exact-copy dedup: the normalised text and its hash, the new/duplicate decision, and stories over a batch."""

from __future__ import annotations

import pytest
from tests.conftest import shared_fixtures

from ingest.dedup import ClusterInput, cluster, content_hash, decide, normalise_text
from ingest.extract import extract_article
from ingest.services import DEMO_ROOT
from ingest.stores.memory import MemoryDedupStore


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


def test_decide() -> None:
    store = MemoryDedupStore()
    text_hash = content_hash("Un texte")
    assert decide("a", text_hash, store).kind == "new"
    store.commit("a", text_hash)
    again = decide("a", text_hash, store)  # a retried article is still its own story, not its own duplicate
    assert (again.kind, again.story_id, again.duplicate_of) == ("new", "a", None)
    copy = decide("b", text_hash, store)
    assert (copy.kind, copy.story_id, copy.duplicate_of) == ("duplicate", "a", "a")


def test_cluster(seed_text: str) -> None:
    records = [
        ClusterInput("izhevsk", seed_text, title="Izhevsk", lang="fr"),
        ClusterInput("other", "Le merlu de l'Atlantique Nord a été sauvé de l'extinction.", lang="fr"),
        ClusterInput("izhevsk-copy", seed_text, title="Reprise", lang="fr"),
        ClusterInput("izhevsk-shouted", seed_text.upper(), lang="fr"),
        ClusterInput("other-copy", "LE MERLU de l’Atlantique nord a ete sauve de l’extinction", lang="fr"),
        ClusterInput("third", "Russia hits Kyiv with ballistic missile.", lang="en"),
    ]
    results = {r.id: r for r in cluster(records, MemoryDedupStore())}
    assert list(results) == [r.id for r in records]
    # First of a story: no duplicate_of, its own story.
    for first in ("izhevsk", "other", "third"):
        assert (results[first].story_id, results[first].duplicate_of) == (first, None)
    # Copies point to the first article that had the text.
    for copy, first in (("izhevsk-copy", "izhevsk"), ("izhevsk-shouted", "izhevsk"), ("other-copy", "other")):
        assert (results[copy].story_id, results[copy].duplicate_of) == (first, first)


def test_cluster_is_idempotent_over_a_rerun(seed_text: str) -> None:
    store = MemoryDedupStore()
    records = [ClusterInput("a", seed_text), ClusterInput("b", seed_text), ClusterInput("c", "Autre chose.")]
    first_run = list(cluster(records, store))
    second_run = list(cluster(records, store))
    assert first_run == second_run
    # Arrival order decides who is first.
    reordered = {r.id: r for r in cluster(reversed(records), MemoryDedupStore())}
    assert (reordered["b"].story_id, reordered["b"].duplicate_of) == ("b", None)
    assert reordered["a"].duplicate_of == "b"
