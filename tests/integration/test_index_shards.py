"""Primary shards and replicas from the settings (INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS / __NUMBER_OF_REPLICAS) on
the test search server, which keeps both per index and reports a replica it cannot place as yellow health: `ingest
index setup` creates the first index with them and changes replicas live; another shard count is a migration."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from elasticsearch import Elasticsearch

from ingest.config import Settings
from ingest.search_index.migrate import migrate_index
from ingest.search_index.setup import configured_template, create_versioned_index, read_state, setup_index
from ingest.search_index.template import (
    FINGERPRINT_KEY,
    IndexState,
    index_template,
    parse_index_state,
    parse_shards,
    plan_migration,
    template_fingerprint,
)
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, install_template
from tests.integration.test_cli import run, settings_env
from tests.integration.test_index_migrate import documents, es_settings, titles


def counts(es: Elasticsearch, index: str) -> tuple[int, int]:
    """``(primary shards, replicas)`` the server holds for the index."""
    found = es.indices.get_settings(index=index, name="index.number_of_*").body[index]["settings"]["index"]
    return int(found["number_of_shards"]), int(found["number_of_replicas"])


def template_counts(es: Elasticsearch, name: str) -> dict[str, Any]:
    body = es.indices.get_index_template(name=name).body["index_templates"][0]["index_template"]["template"]
    settings = body.get("settings", {})
    settings = settings.get("index", settings)
    return {k: int(v) for k, v in settings.items() if k in ("number_of_shards", "number_of_replicas")}


def test_setup_creates_the_index_with_the_settings_counts_and_changes_replicas_live(settings: Settings) -> None:
    wanted = es_settings(settings, number_of_shards=3, number_of_replicas=0)
    prefix = wanted.index_prefix
    es = build_es_client(wanted)

    first = setup_index(es, wanted)
    assert first.created and first.replicas_changed == ()
    assert counts(es, f"{prefix}-v1") == (3, 0)
    assert template_counts(es, prefix) == {"number_of_shards": 3, "number_of_replicas": 0}
    # One node holds no replica: with 0 the index is green there, with 1 it is yellow.
    assert es.cluster.health(index=f"{prefix}-v1").body["status"] == "green"
    assert first.state.shards == {1: 3}

    more = wanted.model_copy(update={"number_of_replicas": 1})
    again = setup_index(es, more)
    assert not again.created and again.replicas_changed == (f"{prefix}-v1",)
    assert counts(es, f"{prefix}-v1") == (3, 1), "replicas change on the live index; shards stay"
    assert es.cluster.health(index=f"{prefix}-v1").body["status"] == "yellow"
    assert setup_index(es, more).replicas_changed == (), "nothing to change the second time"


def test_another_shard_count_is_a_migration_to_a_new_index(settings: Settings, tmp_path: Any) -> None:
    one = es_settings(settings, number_of_replicas=0)
    prefix = one.index_prefix
    es = build_es_client(one)
    setup_index(es, one)
    sink = ElasticsearchSink(es, one)
    before = documents(6)
    assert all(o.ok for o in sink.write(before))
    # Every pipeline run installs the repo's template (1 shard, no replica count): the fingerprint is the same.
    assert template_fingerprint(index_template(prefix)) == template_fingerprint(configured_template(one))
    assert migrate_index(es, one, settle_seconds=0).plan.steps == (), "the same counts: nothing to migrate"

    env = {**settings_env(settings, tmp_path), "INGEST_ELASTICSEARCH__INDEX_PREFIX": prefix,
           "INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS": "2", "INGEST_ELASTICSEARCH__NUMBER_OF_REPLICAS": "0"}
    told = run(["index", "setup"], env)
    assert told.returncode == 0, told.stderr
    assert (f"{prefix}-v1 has 1 primary shard(s) and INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS is 2: "
            "`ingest index migrate`") in told.stdout

    two = one.model_copy(update={"number_of_shards": 2})
    sink.ensure_ready()  # as every pipeline run does: the repo's template again, which changes no plan
    result = migrate_index(es, two, settle_seconds=0)
    assert result.plan.steps[:2] == ("install_template", "create_index")
    assert counts(es, f"{prefix}-v2") == (2, 0) and counts(es, f"{prefix}-v1") == (1, 0)
    state = read_state(es, prefix)
    assert (state.read, state.write, state.shards) == ((2,), (2,), {1: 1, 2: 2})
    assert titles(es, prefix) == {doc_id: doc["title"] for doc_id, doc in before}
    assert migrate_index(es, two, settle_seconds=0).plan.steps == ()
    quiet = run(["index", "setup"], env)
    assert quiet.returncode == 0 and "migrate" not in quiet.stdout, quiet.stdout


def test_the_request_s_counts_win_over_the_installed_template(settings: Settings) -> None:
    wanted = es_settings(settings, number_of_shards=4, number_of_replicas=0)
    es = build_es_client(wanted)
    install_template(es, wanted.index_prefix)  # the repo's: 1 shard, the server's replicas
    assert create_versioned_index(es, f"{wanted.index_prefix}-v1", wanted)
    assert counts(es, f"{wanted.index_prefix}-v1") == (4, 0)
    assert not create_versioned_index(es, f"{wanted.index_prefix}-v1", wanted), "exists already"


def test_the_counts_are_in_the_template_but_not_in_its_fingerprint() -> None:
    repo = index_template("news")
    scaled = index_template("news", 120, 1)
    assert scaled["template"]["settings"]["number_of_shards"] == 120
    assert scaled["template"]["settings"]["number_of_replicas"] == 1
    assert "number_of_replicas" not in repo["template"]["settings"], "None leaves replicas to the server"
    assert template_fingerprint(scaled) == template_fingerprint(repo)
    assert scaled["template"]["mappings"]["_meta"][FINGERPRINT_KEY] == template_fingerprint(repo)
    # The hash of the file as it was before the counts were settings: indices stamped then are still current.
    body = copy.deepcopy(repo)
    del body["template"]["mappings"]["_meta"]
    before = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert template_fingerprint(repo) == before


def test_the_plan_moves_an_index_with_another_shard_count() -> None:
    aliases = {"news-v1": {"aliases": {"news": {}, "news-write": {"is_write_index": True}}},
               "news-v2": {"aliases": {}}}
    mappings = {name: {"mappings": {"_meta": {FINGERPRINT_KEY: "abc"}}} for name in aliases}
    shard_body = {"news-v1": {"settings": {"index": {"number_of_shards": "1"}}},
                  "news-v2": {"settings": {"index": {"number_of_shards": "6"}}}}
    state = parse_shards(parse_index_state("news", aliases, mappings), shard_body)
    assert state.shards == {1: 1, 2: 6}
    assert plan_migration(state, "abc", 1).steps == ()
    assert plan_migration(state, "abc").steps == (), "no count asked: shards are not compared"
    # v2 was made with 6 shards by a run that stopped before moving the write alias: it is reused.
    assert plan_migration(state, "abc", 6).steps == ("install_template", "move_write_alias", "copy_documents",
                                                     "swap_read_alias")
    only_v1 = IndexState("news", {1: "abc"}, read=(1,), write=(1,), shards={1: 1})
    assert plan_migration(only_v1, "abc", 6).steps[:2] == ("install_template", "create_index")


def test_a_pipeline_run_that_comes_first_makes_the_index_with_the_settings_counts(settings: Settings) -> None:
    """The sink's own set-up (every pipeline run, the demo) installs the same template as `ingest index setup`,
    so the first index has the deployment's counts and the stored template is not put back to the defaults."""
    wanted = es_settings(settings, number_of_shards=2, number_of_replicas=0)
    es = build_es_client(wanted)
    ElasticsearchSink(es, wanted).ensure_ready()
    assert counts(es, f"{wanted.index_prefix}-v1") == (2, 0)
    assert template_counts(es, wanted.index_prefix) == {"number_of_shards": 2, "number_of_replicas": 0}
