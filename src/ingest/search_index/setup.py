"""``ingest index setup`` with the deployment's shards and replicas (``INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS`` and
``__NUMBER_OF_REPLICAS``), and the index creation ``ingest index migrate`` shares with it.

Both counts go into the template, and into the create request of every index made here: settings in the request
win over the template's, so an index gets this deployment's counts even when another process has just installed
the template with other ones (every pipeline run installs the repo's, see ``ElasticsearchSink.ensure_ready``).
A primary shard count is fixed when an index is made: another one takes a new index version (``ingest index
migrate`` plans one when the live index has another count). Replicas change live: setup applies the setting to
every version of the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from ingest.config import ElasticsearchSettings
from ingest.errors import ConfigError
from ingest.search_index.template import (
    IndexState,
    index_names,
    index_pattern,
    index_template,
    index_version,
    parse_shards,
    shard_settings,
)
from ingest.stores.elasticsearch import create_index, install_template, read_index_state


def configured_template(settings: ElasticsearchSettings) -> dict[str, Any]:
    """The repo's template for this prefix, with this deployment's shards and replicas."""
    return index_template(settings.index_prefix, settings.number_of_shards, settings.number_of_replicas)


def create_versioned_index(client: Elasticsearch, index: str, settings: ElasticsearchSettings,
                           aliases: dict[str, Any] | None = None) -> bool:
    """Create ``index`` (the template gives the mapping) with the settings' shards and replicas; False when it
    exists already (another process, or an interrupted run, made it)."""
    return create_index(client, index, aliases, shard_settings(settings.number_of_shards, settings.number_of_replicas))


def read_state(client: Elasticsearch, prefix: str) -> IndexState:
    """Versions, aliases and fingerprints (``read_index_state``) and each version's primary shards."""
    state = read_index_state(client, prefix)
    body = client.indices.get_settings(index=index_pattern(prefix), name="index.number_of_shards").body
    return parse_shards(state, body)


def apply_replicas(client: Elasticsearch, settings: ElasticsearchSettings) -> list[str]:
    """Give every ``<prefix>-v<N>`` index the settings' number of replicas (a live change: Elasticsearch copies
    or drops replica shards in the background); the names of the indices that had another count."""
    prefix, wanted = settings.index_prefix, settings.number_of_replicas
    body = client.indices.get_settings(index=index_pattern(prefix), name="index.number_of_replicas").body
    changed = sorted(
        index for index, found in body.items()
        if index_version(prefix, index) is not None
        and str(found.get("settings", {}).get("index", {}).get("number_of_replicas")) != str(wanted)
    )
    if changed:
        client.indices.put_settings(index=",".join(changed), settings={"index": {"number_of_replicas": wanted}})
    return changed


@dataclass(frozen=True)
class SetupResult:
    state: IndexState
    created: bool  # the first index was made by this run
    replicas_changed: tuple[str, ...]  # indices whose replica count this run changed


def setup_index(client: Elasticsearch, settings: ElasticsearchSettings) -> SetupResult:
    """Install the template; create ``<prefix>-v1`` with both aliases unless the read alias exists (on whichever
    version); give every version the settings' replicas. Safe to run again, and from several processes at once."""
    prefix = settings.index_prefix
    install_template(client, prefix, configured_template(settings))
    index, read_alias, write_alias = index_names(prefix)
    created = False
    if not client.indices.exists_alias(name=read_alias):
        aliases = {read_alias: {}, write_alias: {"is_write_index": True}}
        created = create_versioned_index(client, index, settings, aliases)
        if not created and not client.indices.exists_alias(name=read_alias):
            raise ConfigError(f"index {index} exists without the alias {read_alias!r}: add both aliases to it "
                              "(POST _aliases) or delete it, then run `ingest index setup`")
    changed = apply_replicas(client, settings)
    return SetupResult(read_state(client, prefix), created, tuple(changed))


def stale_reason(state: IndexState, settings: ElasticsearchSettings, fingerprint: str) -> str | None:
    """Why the index readers see is not what ``ingest index migrate`` would make now, or None."""
    current = state.current
    if current is None:
        return None
    if state.versions.get(current) != fingerprint:
        return f"{state.name(current)} was made from another template"
    shards = state.shards.get(current, settings.number_of_shards)
    if shards != settings.number_of_shards:
        return (f"{state.name(current)} has {shards} primary shard(s) and INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS "
                f"is {settings.number_of_shards}")
    return None
