"""The index as downstream consumers and operators see it, in pure functions: the template kept in the repo
(``index_template.json``) and its fingerprint, the names of the versioned indices and their aliases, and which
versions the aliases point at (:class:`IndexState`, read by ``ingest.stores.elasticsearch``), with the plan that
moves them to a new version (``ingest.search_index.migrate`` carries it out)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Literal

from ingest.errors import ConfigError

# Where an index's mapping records the fingerprint of the template it was made from (``_meta`` is kept as given).
FINGERPRINT_KEY = "template_fingerprint"


def index_template(prefix: str, shards: int = 1, replicas: int | None = None) -> dict[str, Any]:
    """The index template kept in the repo, with the index name prefix filled in, the deployment's primary shards
    and replicas (``INGEST_ELASTICSEARCH__NUMBER_OF_*``; None leaves replicas to the server) and its fingerprint
    stamped (the same for every shard and replica count)."""
    raw = resources.files("ingest.search_index").joinpath("index_template.json").read_text(encoding="utf-8")
    template = json.loads(raw.replace("{prefix}", prefix))
    template["template"]["settings"].update(shard_settings(shards, replicas))
    return stamp_template(template)


def shard_settings(shards: int, replicas: int | None = None) -> dict[str, int]:
    """The index settings for a number of primary shards and of replicas (None: the server's default)."""
    return {"number_of_shards": shards} | ({} if replicas is None else {"number_of_replicas": replicas})


def template_fingerprint(template: Mapping[str, Any]) -> str:
    """A short hash of a template's content (its own stamp left out): equal fingerprints, same mapping and
    analysis. Shard and replica counts are the deployment's, not the content's: they are hashed as the repo's file
    has them (one shard, no replica count), so that a deployment's own counts, and indices made before they were
    settings, do not make an index look older than the template (``IndexState.shards`` tells the shard count)."""
    body = copy.deepcopy(dict(template))
    mappings = body.get("template", {}).get("mappings", {})
    meta = {k: v for k, v in mappings.pop("_meta", {}).items() if k != FINGERPRINT_KEY}
    if meta:
        mappings["_meta"] = meta
    settings = body.get("template", {}).get("settings")
    if isinstance(settings, dict):
        settings.pop("number_of_replicas", None)
        if "number_of_shards" in settings:
            settings["number_of_shards"] = 1
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamp_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template with its fingerprint in the mapping's ``_meta``: every index made from it carries it, which
    is how ``ingest index migrate`` knows whether the live index is older than the template in the repo."""
    stamped = copy.deepcopy(dict(template))
    mappings = stamped.setdefault("template", {}).setdefault("mappings", {})
    mappings.setdefault("_meta", {})[FINGERPRINT_KEY] = template_fingerprint(template)
    return stamped


def index_names(prefix: str, version: int = 1) -> tuple[str, str, str]:
    """``(concrete index, read alias, write alias)``."""
    return index_name(prefix, version), prefix, f"{prefix}-write"


def index_name(prefix: str, version: int) -> str:
    """The concrete index of one version: ``<prefix>-v<version>`` (the template's pattern is ``<prefix>-v*``)."""
    return f"{prefix}-v{version}"


def index_pattern(prefix: str) -> str:
    """Every version's index: the pattern of the template and of the look-ups that find the versions."""
    return f"{prefix}-v*"


def index_version(prefix: str, index: str) -> int | None:
    """The version of a concrete index name, or None for a name that is not ``<prefix>-v<digits>``."""
    head, digits = f"{prefix}-v", index[len(prefix) + 2:]
    return int(digits) if index.startswith(head) and digits.isascii() and digits.isdigit() else None


# ------------------------------------------------------------------ versions behind the aliases (pure)


@dataclass(frozen=True)
class IndexState:
    """The versioned indices of a prefix as the server holds them: each version's template fingerprint (None
    for an index made before fingerprints), the versions the read alias points at, and the version the write
    alias sends new documents to (its write index)."""

    prefix: str
    versions: Mapping[int, str | None]
    read: tuple[int, ...]
    write: tuple[int, ...]
    # Each version's primary shards, when read (``parse_shards``); a version missing here is not compared.
    shards: Mapping[int, int] = field(default_factory=dict)

    def name(self, version: int) -> str:
        return index_name(self.prefix, version)

    @property
    def read_alias(self) -> str:
        return index_names(self.prefix)[1]

    @property
    def write_alias(self) -> str:
        return index_names(self.prefix)[2]

    @property
    def current(self) -> int | None:
        """The version readers see, when the read alias points at exactly one versioned index."""
        return self.read[0] if len(self.read) == 1 else None


def parse_index_state(prefix: str, aliases: Mapping[str, Any], mappings: Mapping[str, Any]) -> IndexState:
    """``IndexState`` from the bodies of ``GET <prefix>-v*/_alias`` and ``GET <prefix>-v*/_mapping``."""
    _, read_alias, write_alias = index_names(prefix)
    versions: dict[int, str | None] = {}
    read: list[int] = []
    holders: list[int] = []
    flagged: list[int] = []
    for index, body in aliases.items():
        version = index_version(prefix, index)
        if version is None:
            continue
        meta = mappings.get(index, {}).get("mappings", {}).get("_meta", {})
        versions[version] = meta.get(FINGERPRINT_KEY)
        names = body.get("aliases", {})
        if read_alias in names:
            read.append(version)
        if write_alias in names:
            holders.append(version)
            if names[write_alias].get("is_write_index"):
                flagged.append(version)
    # An alias over one index writes to it unless it says otherwise; over several, only to the flagged one.
    write = flagged or (holders if len(holders) == 1 else [])
    return IndexState(prefix, versions, tuple(sorted(read)), tuple(sorted(write)))


def parse_shards(state: IndexState, settings: Mapping[str, Any]) -> IndexState:
    """``state`` with each version's primary shards, from the body of
    ``GET <prefix>-v*/_settings/index.number_of_shards``."""
    shards = {}
    for index, body in settings.items():
        version = index_version(state.prefix, index)
        count = body.get("settings", {}).get("index", {}).get("number_of_shards")
        if version is not None and count is not None:
            shards[version] = int(count)
    return replace(state, shards=shards)


MigrationStep = Literal["install_template", "create_index", "move_write_alias", "copy_documents", "swap_read_alias"]


@dataclass(frozen=True)
class MigrationPlan:
    """What ``ingest index migrate`` still has to do to move readers and writers from ``source`` to ``target``;
    no steps when the index readers see already has the template's fingerprint."""

    source: int
    target: int
    steps: tuple[MigrationStep, ...]


def plan_migration(state: IndexState, fingerprint: str, shards: int | None = None) -> MigrationPlan:
    """The remaining steps, from where the aliases are now: a migration that stopped at any step resumes at the
    next one. An index is current when it has the template's fingerprint and, if ``shards`` is given, that many
    primary shards (where ``state.shards`` knows them). ``ConfigError`` for a state no step of ours leaves behind,
    with what to fix."""

    def current(version: int) -> bool:
        same_shards = shards is None or state.shards.get(version, shards) == shards
        return state.versions.get(version) == fingerprint and same_shards

    read_alias, write_alias = state.read_alias, state.write_alias
    if not state.read:
        raise ConfigError(f"the read alias {read_alias!r} is on no {state.prefix}-v<N> index: "
                          "run `ingest index setup` first")
    if len(state.read) > 1:
        names = ", ".join(state.name(v) for v in state.read)
        raise ConfigError(f"the read alias {read_alias!r} points at {names}: point it at one of them "
                          "(POST _aliases) and run `ingest index migrate` again")
    source = state.read[0]
    if len(state.write) != 1:
        raise ConfigError(f"the write alias {write_alias!r} has no single write index among {state.prefix}-v<N>: "
                          f"add it to {state.name(source)} with is_write_index (POST _aliases) and run again")
    write = state.write[0]
    if write < source:
        raise ConfigError(f"the write alias {write_alias!r} is on {state.name(write)}, older than "
                          f"{state.name(source)} readers see: move it to {state.name(source)} and run again")
    if write > source:  # stopped after moving the write alias: copy what is missing, then swap the read alias
        return MigrationPlan(source, write, ("install_template", "copy_documents", "swap_read_alias"))
    if current(source):
        return MigrationPlan(source, source, ())
    target = source + 1
    if target not in state.versions:
        return MigrationPlan(source, target, ("install_template", "create_index", "move_write_alias",
                                              "copy_documents", "swap_read_alias"))
    if not current(target):
        raise ConfigError(f"{state.name(target)} exists but was made from another template (or with another number "
                          "of shards), and no alias points at it (a migration stopped before moving the write alias): "
                          "delete it "
                          f"(DELETE /{state.name(target)}) and run `ingest index migrate` again")
    return MigrationPlan(source, target, ("install_template", "move_write_alias", "copy_documents",
                                          "swap_read_alias"))


def move_alias_actions(alias: str, source: str, target: str, *, write: bool = False) -> list[dict[str, Any]]:
    """One atomic ``POST _aliases`` body moving ``alias`` from ``source`` to ``target``; ``must_exist`` makes it
    fail, changing nothing, when another process moved the alias first."""
    add: dict[str, Any] = {"index": target, "alias": alias}
    if write:
        add["is_write_index"] = True
    return [{"remove": {"index": source, "alias": alias, "must_exist": True}}, {"add": add}]
