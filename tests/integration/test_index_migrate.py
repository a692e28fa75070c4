"""`ingest index migrate` on the test search server: readers and writers move to a new index version made from the
current template, no document is lost or overwritten by its older copy, and a run stopped after any step resumes."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import Elasticsearch

from ingest.config import ElasticsearchSettings, Settings
from ingest.errors import ConfigError
from ingest.index import to_document
from ingest.search_index.migrate import CopyCounts, MigrationError, migrate_index
from ingest.search_index.template import (
    IndexState,
    MigrationStep,
    index_name,
    index_template,
    parse_index_state,
    plan_migration,
    template_fingerprint,
)
from ingest.stores.elasticsearch import (
    ElasticsearchSink,
    build_es_client,
    create_index,
    install_template,
    read_index_state,
)
from tests.documents import INDEXED_AT, sample_article
from tests.integration.test_cli import run, settings_env

ALL_STEPS: tuple[MigrationStep, ...] = (
    "install_template", "create_index", "move_write_alias", "copy_documents", "swap_read_alias")


class SimulatedCrashError(Exception):
    """Stands for a process killed right after a step finished."""


def documents(count: int, title: str = "avant", start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Realistic enriched documents with their own ids."""
    out = []
    for i in range(start, start + count):
        article = sample_article(article_id=f"doc{i:04d}", url=f"http://example.org/{i}",
                                 canonical_url=f"http://example.org/{i}", title=f"{title} {i}")
        out.append((article.article_id, to_document(article, INDEXED_AT, 1)))
    return out


def old_template(prefix: str) -> dict[str, Any]:
    """The template an older release installed: one more field than today's, and no fingerprint."""
    template = index_template(prefix)
    del template["template"]["mappings"]["_meta"]
    template["template"]["mappings"]["properties"]["legacy_field"] = {"type": "keyword"}
    return template


def old_deployment(es: Elasticsearch, prefix: str) -> None:
    """v1 with both aliases, made from the older template (as `ingest index setup` of that release did)."""
    es.indices.put_index_template(name=prefix, **old_template(prefix))
    state = read_index_state(es, prefix)
    assert create_index(es, index_name(prefix, 1), {state.read_alias: {}, state.write_alias: {"is_write_index": True}})


def es_settings(settings: Settings, **update: Any) -> ElasticsearchSettings:
    return settings.elasticsearch.model_copy(update=update)


def titles(es: Elasticsearch, index: str) -> dict[str, str]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"]["title"] for h in hits}


def assert_one_read_index(state: IndexState) -> None:
    assert len(state.read) == 1, f"the read alias points at {state.read}"
    assert len(state.write) == 1, f"the write alias writes to {state.write}"


def test_migrate_moves_readers_and_writers_to_an_index_made_from_the_current_template(settings: Settings) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    sink = ElasticsearchSink(es, settings.elasticsearch)
    before = documents(25)
    assert all(o.ok for o in sink.write(before))

    seen: list[tuple[MigrationStep, IndexState]] = []
    result = migrate_index(es, settings.elasticsearch, settle_seconds=0,
                           on_step=lambda step, _: seen.append((step, read_index_state(es, prefix))))

    assert [step for step, _ in seen] == list(ALL_STEPS)
    for _, state in seen:
        assert_one_read_index(state)
    after_move = dict(seen)["move_write_alias"]
    assert (after_move.read, after_move.write) == ((1,), (2,)), "writers move first, readers stay until the copy"
    assert result.counts is not None
    assert (result.counts.copied, result.counts.already_there, result.counts.failed) == (25, 0, 0)

    state = read_index_state(es, prefix)
    assert (state.read, state.write) == ((2,), (2,))
    assert titles(es, state.read_alias) == {doc_id: doc["title"] for doc_id, doc in before}
    mappings = es.indices.get_mapping(index=f"{prefix}-v1,{prefix}-v2").body
    new = mappings[f"{prefix}-v2"]["mappings"]
    assert new["_meta"]["template_fingerprint"] == template_fingerprint(index_template(prefix))
    assert "legacy_field" not in new["properties"], "v2 has today's mapping"
    assert "legacy_field" in mappings[f"{prefix}-v1"]["mappings"]["properties"], "v1 is left as it was"
    assert int(es.count(index=f"{prefix}-v1")["count"]) == 25

    # The same sink keeps writing: through the write alias, into v2 only.
    assert all(o.ok for o in sink.write(documents(1, "après", start=100)))
    assert es.get(index=f"{prefix}-v2", id="doc0100")["_source"]["title"] == "après 100"
    assert not es.exists(index=f"{prefix}-v1", id="doc0100")

    # Running again, or setting up again, changes nothing.
    again = migrate_index(es, settings.elasticsearch, settle_seconds=0)
    assert again.plan.steps == () and again.source == f"{prefix}-v2"
    ElasticsearchSink(build_es_client(settings.elasticsearch), settings.elasticsearch).ensure_ready()
    assert read_index_state(es, prefix) == state
    assert int(es.count(index=state.read_alias)["count"]) == 26


def test_documents_written_during_the_copy_are_not_overwritten_by_their_old_copies(settings: Settings) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    sink = ElasticsearchSink(es, settings.elasticsearch)
    assert all(o.ok for o in sink.write(documents(30, "avant")))

    calls: list[CopyCounts] = []

    def update_everything(counts: CopyCounts) -> None:
        if not calls:  # after the first request of 10 copies: 20 documents are not copied yet
            state = read_index_state(es, prefix)
            assert (state.read, state.write) == ((1,), (2,))
            assert all(o.ok for o in sink.write([*documents(30, "après"), *documents(1, "nouveau", start=30)]))
        calls.append(counts)

    result = migrate_index(es, es_settings(settings, bulk_max_docs=10), settle_seconds=0, on_copy=update_everything)

    assert result.counts is not None
    assert (result.counts.copied, result.counts.already_there, result.counts.failed) == (10, 20, 0)
    expected = {f"doc{i:04d}": f"après {i}" for i in range(30)} | {"doc0030": "nouveau 30"}
    assert titles(es, prefix) == expected
    assert titles(es, f"{prefix}-v1") == {f"doc{i:04d}": f"avant {i}" for i in range(30)}


@pytest.mark.parametrize("stopped_after", ALL_STEPS)
def test_a_migration_stopped_after_any_step_resumes_at_the_next(settings: Settings,
                                                                stopped_after: MigrationStep) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    sink = ElasticsearchSink(es, settings.elasticsearch)
    assert all(o.ok for o in sink.write(documents(12)))

    def crash(step: MigrationStep, _: str) -> None:
        if step == stopped_after:
            raise SimulatedCrashError(step)

    with pytest.raises(SimulatedCrashError):
        migrate_index(es, settings.elasticsearch, settle_seconds=0, on_step=crash)
    state = read_index_state(es, prefix)
    assert_one_read_index(state)
    left = plan_migration(state, template_fingerprint(index_template(prefix))).steps
    expected_left = {
        "install_template": ALL_STEPS,
        "create_index": ("install_template", "move_write_alias", "copy_documents", "swap_read_alias"),
        "move_write_alias": ("install_template", "copy_documents", "swap_read_alias"),
        "copy_documents": ("install_template", "copy_documents", "swap_read_alias"),
        "swap_read_alias": (),
    }[stopped_after]
    assert left == expected_left

    # The pipeline goes on writing while nobody notices the crash.
    assert all(o.ok for o in sink.write(documents(1, "corrigé")))
    resumed = migrate_index(es, settings.elasticsearch, settle_seconds=0)

    assert resumed.plan.steps == expected_left
    state = read_index_state(es, prefix)
    assert (state.read, state.write) == ((2,), (2,))
    assert set(state.versions) == {1, 2}, "a resumed run makes no third index"
    expected = {f"doc{i:04d}": f"avant {i}" for i in range(12)} | {"doc0000": "corrigé 0"}
    assert titles(es, prefix) == expected


def test_documents_the_new_mapping_refuses_keep_readers_on_the_old_index_until_fixed(settings: Settings) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    sink = ElasticsearchSink(es, settings.elasticsearch)
    legacy = [(doc_id, {**doc, "legacy_field": "x"}) for doc_id, doc in documents(3, start=10)]
    assert all(o.ok for o in sink.write([*documents(10), *legacy]))

    with pytest.raises(MigrationError, match=r"3 document\(s\).*strict_dynamic_mapping_exception.*run `ingest index "
                                             r"migrate` again"):
        migrate_index(es, settings.elasticsearch, settle_seconds=0)
    state = read_index_state(es, prefix)
    assert (state.read, state.write) == ((1,), (2,)), "readers stay where every document is"
    assert int(es.count(index=prefix)["count"]) == 13

    # What the message says to do: let v2 accept the field, run again; only the three are copied.
    es.indices.put_mapping(index=f"{prefix}-v2", properties={"legacy_field": {"type": "keyword"}})
    resumed = migrate_index(es, settings.elasticsearch, settle_seconds=0)
    assert resumed.counts is not None
    assert (resumed.counts.copied, resumed.counts.already_there, resumed.counts.failed) == (3, 10, 0)
    assert read_index_state(es, prefix).read == (2,)
    assert int(es.count(index=prefix)["count"]) == 13


def test_states_no_migration_leaves_are_refused_with_what_to_do(settings: Settings) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    with pytest.raises(ConfigError, match="run `ingest index setup` first"):
        migrate_index(es, settings.elasticsearch)

    old_deployment(es, prefix)
    # A v2 from yet another template that nothing points at (a migration of an older release stopped early).
    install_template(es, prefix, old_template(prefix))
    assert create_index(es, f"{prefix}-v2")
    with pytest.raises(ConfigError, match=rf"{prefix}-v2 exists but was made from another template.*DELETE"):
        migrate_index(es, settings.elasticsearch)
    es.indices.delete(index=f"{prefix}-v2")

    assert create_index(es, f"{prefix}-v3", {prefix: {}})
    with pytest.raises(ConfigError, match=rf"points at {prefix}-v1, {prefix}-v3"):
        migrate_index(es, settings.elasticsearch)
    assert read_index_state(es, prefix).read == (1, 3), "nothing was changed"


def test_plan_reads_the_versions_from_the_aliases_not_from_a_fixed_v1() -> None:
    aliases = {
        "news-v7": {"aliases": {"news": {}}},
        "news-v8": {"aliases": {"news-write": {"is_write_index": True}}},
        "news-v10": {"aliases": {}},
        "news-vintage": {"aliases": {}},
    }
    mappings = {"news-v8": {"mappings": {"_meta": {"template_fingerprint": "abc"}}}}
    state = parse_index_state("news", aliases, mappings)
    assert state == IndexState("news", {7: None, 8: "abc", 10: None}, read=(7,), write=(8,))
    plan = plan_migration(state, "abc")
    assert (plan.source, plan.target, plan.steps) == (7, 8, ("install_template", "copy_documents", "swap_read_alias"))
    done = parse_index_state("news", {"news-v8": {"aliases": {"news": {}, "news-write": {}}}}, mappings)
    assert plan_migration(done, "abc").steps == ()
    assert plan_migration(done, "def").target == 9


def test_the_fingerprint_follows_the_template_not_its_stamp() -> None:
    stamped = index_template("news")
    bare = old_template("news")
    del bare["template"]["mappings"]["properties"]["legacy_field"]
    assert "_meta" not in bare["template"]["mappings"]
    assert template_fingerprint(bare) == template_fingerprint(stamped)
    assert stamped["template"]["mappings"]["_meta"]["template_fingerprint"] == template_fingerprint(stamped)
    assert template_fingerprint(old_template("news")) != template_fingerprint(stamped)
    assert template_fingerprint(index_template("press")) != template_fingerprint(stamped), "the prefix is part of it"


def test_cli_dry_run_changes_nothing_and_migrate_prints_counts(settings: Settings, tmp_path: Any) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    ElasticsearchSink(es, settings.elasticsearch).write(documents(4))
    env = settings_env(settings, tmp_path)

    dry = run(["index", "migrate", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert f"copy the documents of {prefix}-v1 (4) into {prefix}-v2" in dry.stdout
    assert read_index_state(es, prefix).read == (1,) and not es.indices.exists(index=f"{prefix}-v2")

    done = run(["index", "migrate"], env)
    assert done.returncode == 0, done.stderr
    assert "copied 4, already there 0, failed 0" in done.stdout
    assert f"DELETE {settings.elasticsearch.hosts[0].rstrip('/')}/{prefix}-v1" in done.stdout
    setup = run(["index", "setup"], env)
    assert setup.returncode == 0 and f"readers see {prefix}-v2" in setup.stdout, setup.stdout + setup.stderr

    down = run(["index", "migrate"], {**env, "INGEST_ELASTICSEARCH__HOSTS": '["http://127.0.0.1:9"]'})
    assert down.returncode == 3 and down.stderr.count("\n") == 1 and "not reachable" in down.stderr
