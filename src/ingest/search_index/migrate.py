"""``ingest index migrate``: readers and writers move to a new index version made from the current template,
no document lost or overwritten by an older copy, and a run stopped at any step resumes at the next one.

The order is what makes it safe: the write alias moves first (new and updated documents land in the new index),
then the old index is copied with ``create`` (a document already in the new index is newer and is kept), then the
read alias moves in one ``POST _aliases`` (readers see one index at every moment). The old index stays.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from ingest.config import ElasticsearchSettings
from ingest.errors import ConfigError, IngestError, ServiceUnavailableError
from ingest.search_index.setup import configured_template, create_versioned_index, read_state
from ingest.search_index.template import (
    IndexState,
    MigrationPlan,
    MigrationStep,
    move_alias_actions,
    plan_migration,
    stamp_template,
    template_fingerprint,
)
from ingest.stores.elasticsearch import describe_error, install_template

logger = logging.getLogger(__name__)

# A second (third) copy pass runs only when the old index grew during the previous one: a bulk request that had
# resolved the write alias before it moved and landed afterwards.
MAX_COPY_PASSES = 3
MAX_EXAMPLES = 5


class MigrationError(IngestError):
    """A step failed; the aliases are where the last finished step left them, and a new run resumes there."""


@dataclass(frozen=True)
class CopyCounts:
    """What copying the old index did: documents created in the new one, documents found there already (written
    through the write alias since it moved, or copied by an interrupted run), failures by error type."""

    copied: int = 0
    already_there: int = 0
    failed: int = 0
    reasons: tuple[tuple[str, int], ...] = ()
    examples: tuple[str, ...] = ()
    passes: int = 0
    seconds: float = 0.0
    in_source: int = 0  # documents in the old index when the last pass began


@dataclass(frozen=True)
class MigrationResult:
    """The plan a run followed (or, dry run, would follow), the copy's counts and how long it took."""

    state: IndexState
    plan: MigrationPlan
    fingerprint: str
    dry_run: bool
    counts: CopyCounts | None = None
    seconds: float = 0.0
    shards: int = 1  # primary shards of the index a migration creates (INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS)

    @property
    def source(self) -> str:
        return self.state.name(self.plan.source)

    @property
    def target(self) -> str:
        return self.state.name(self.plan.target)


StepHook = Callable[[MigrationStep, str], None]
CopyHook = Callable[[CopyCounts], None]


def migrate_index(
    client: Elasticsearch,
    settings: ElasticsearchSettings,
    *,
    template: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    on_step: StepHook | None = None,
    on_copy: CopyHook | None = None,
    settle_seconds: float = 1.0,
) -> MigrationResult:
    """Move the prefix's aliases to an index made from ``template`` (the repo's by default) with the settings'
    shards and replicas, running only the steps the aliases say are left (an index with the template's
    fingerprint but another number of primary shards is moved too); ``on_step(step, what happened)`` after each
    step, ``on_copy`` as the copy goes (after every bulk request and at the end of each pass). ``settle_seconds``
    after moving the write alias lets bulk requests that resolved it before finish."""
    started = time.monotonic()
    prefix = settings.index_prefix
    stamped = stamp_template(template) if template is not None else configured_template(settings)
    fingerprint = template_fingerprint(stamped)
    state = _read_state(client, settings)
    plan = plan_migration(state, fingerprint, settings.number_of_shards)
    result = MigrationResult(state, plan, fingerprint, dry_run, shards=settings.number_of_shards)
    if dry_run or not plan.steps:
        return result
    source, target = state.name(plan.source), state.name(plan.target)
    counts: CopyCounts | None = None
    for step in plan.steps:
        try:
            if step == "install_template":
                install_template(client, prefix, stamped)
                done = f"template {prefix!r} installed (fingerprint {fingerprint})"
            elif step == "create_index":
                created = create_versioned_index(client, target, settings)
                done = (f"created {target} ({settings.number_of_shards} primary shard(s), "
                        f"{settings.number_of_replicas} replica(s) each)") if created else f"{target} exists already"
            elif step == "move_write_alias":
                if "create_index" not in plan.steps:
                    _check_unused(client, target, source)
                client.indices.update_aliases(actions=move_alias_actions(state.write_alias, source, target,
                                                                         write=True))
                time.sleep(settle_seconds)
                done = f"write alias {state.write_alias!r} moved from {source} to {target}: new documents land there"
            elif step == "copy_documents":
                counts = copy_documents(client, source, target, settings, on_copy)
                done = f"{_describe_counts(counts)} from {source} into {target} in {counts.seconds:.1f} s"
                if counts.failed:
                    raise MigrationError(
                        f"{counts.failed} document(s) of {source} could not be copied into {target} "
                        f"({_describe_failures(counts)}); {_describe_counts(counts)}. The read alias "
                        f"{state.read_alias!r} stays on {source} and new documents go to {target}: make {target}'s "
                        "mapping accept them (fix src/ingest/search_index/index_template.json and "
                        f"PUT /{target}/_mapping with "
                        "the missing fields), then run `ingest index migrate` again: it copies only what is missing"
                    )
            else:  # swap_read_alias: one request, so readers never see both indices or neither
                client.indices.update_aliases(actions=move_alias_actions(state.read_alias, source, target))
                done = f"read alias {state.read_alias!r} moved from {source} to {target} in one request"
        except TransportError as e:
            raise ServiceUnavailableError(
                "the search server", ", ".join(settings.hosts),
                f"the migration stopped at {step.replace('_', ' ')}; run `ingest index migrate` again when it is "
                "back: it resumes there",
            ) from e
        except ApiError as e:
            raise MigrationError(
                f"{step.replace('_', ' ')} ({source} → {target}) failed: {_api_error(e)}; the aliases are where the "
                "previous step left them: run `ingest index migrate` again, it resumes there"
            ) from e
        logger.info("migrate %s: %s", step, done)
        if on_step is not None:
            on_step(step, done)
    return MigrationResult(state, plan, fingerprint, dry_run, counts, time.monotonic() - started,
                           settings.number_of_shards)


def copy_documents(
    client: Elasticsearch,
    source: str,
    target: str,
    settings: ElasticsearchSettings,
    on_copy: CopyHook | None = None,
) -> CopyCounts:
    """Copy every document of ``source`` into ``target`` with bulk ``create``: one already in ``target`` is newer
    (or the same copy) and is kept, counted as already there; a failed item is counted with its reason and the
    copy goes on. Scrolled, not ``_reindex``: per-item outcomes on every server, and no task API needed."""
    started = time.monotonic()
    tally = _Tally()
    for number in range(1, MAX_COPY_PASSES + 1):
        # Everything written to the old index before the write alias moved becomes visible to the scroll.
        client.indices.refresh(index=source)
        read = 0
        tally.in_source = int(client.count(index=source)["count"])
        actions = _create_actions(client, source, target, settings.bulk_max_docs)
        for ok, item in helpers.streaming_bulk(
            client, actions, chunk_size=settings.bulk_max_docs, max_chunk_bytes=settings.bulk_max_bytes,
            raise_on_error=False, max_retries=settings.bulk_retries, initial_backoff=1,
        ):
            read += 1
            # A later pass finds everything the first one copied: only new copies and failures count then.
            tally.add(ok, item.get("create", {}), count_existing=number == 1)
            if on_copy is not None and read % settings.bulk_max_docs == 0:
                on_copy(tally.counts(number, time.monotonic() - started))
        tally.passes = number
        if on_copy is not None:
            on_copy(tally.counts(number, time.monotonic() - started))
        if tally.failed:
            break
        client.indices.refresh(index=source)
        if int(client.count(index=source)["count"]) <= read:
            break
    client.indices.refresh(index=target)
    return tally.counts(tally.passes, time.monotonic() - started)


def describe_plan(result: MigrationResult, documents: int | None = None) -> list[str]:
    """One line per step a plan has left, for ``--dry-run``."""
    state, source, target = result.state, result.source, result.target
    what: dict[MigrationStep, str] = {
        "install_template": f"install the template {state.prefix!r} (fingerprint {result.fingerprint})",
        "create_index": f"create {target} from it with {result.shards} primary shard(s)",
        "move_write_alias": f"move the write alias {state.write_alias!r} from {source} to {target}",
        "copy_documents": f"copy the documents of {source}"
                          + (f" ({documents})" if documents is not None else "")
                          + f" into {target}, keeping those already there",
        "swap_read_alias": f"move the read alias {state.read_alias!r} from {source} to {target} in one request",
    }
    return [what[step] for step in result.plan.steps]


class _Tally:
    def __init__(self) -> None:
        self.copied = self.already_there = self.failed = self.passes = self.in_source = 0
        self.reasons: Counter[str] = Counter()
        self.examples: list[str] = []

    def add(self, ok: bool, item: Mapping[str, Any], count_existing: bool) -> None:
        if ok:
            self.copied += 1
        elif item.get("status") == 409:  # version conflict: the document exists in the new index
            if count_existing:
                self.already_there += 1
        else:
            self.failed += 1
            error = item.get("error")
            self.reasons[error.get("type", "error") if isinstance(error, dict) else f"http_{item.get('status')}"] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{item.get('_id')}: {describe_error(error) or item.get('status')}")

    def counts(self, passes: int, seconds: float) -> CopyCounts:
        return CopyCounts(self.copied, self.already_there, self.failed, tuple(self.reasons.most_common()),
                          tuple(self.examples), passes, seconds, self.in_source)


def _create_actions(client: Elasticsearch, source: str, target: str, size: int) -> Iterator[dict[str, Any]]:
    for hit in helpers.scan(client, index=source, size=size, scroll="10m", query={"query": {"match_all": {}}}):
        yield {"_op_type": "create", "_index": target, "_id": hit["_id"], "_source": hit["_source"]}


def _read_state(client: Elasticsearch, settings: ElasticsearchSettings) -> IndexState:
    try:
        return read_state(client, settings.index_prefix)
    except TransportError as e:
        raise ServiceUnavailableError(
            "the search server", ", ".join(settings.hosts),
            "nothing was changed; run `ingest index migrate` again when it is back (INGEST_ELASTICSEARCH__HOSTS)",
        ) from e


def _check_unused(client: Elasticsearch, target: str, source: str) -> None:
    """A target made by an interrupted run is empty until the write alias points at it; documents in it came from
    elsewhere and could be older than ``source``'s, which ``create`` would then keep."""
    documents = int(client.count(index=target)["count"])
    if documents:
        raise ConfigError(f"{target} holds {documents} document(s) though no alias points at it: it was not made by "
                          f"a migration from {source}; delete it (DELETE /{target}) and run `ingest index migrate` "
                          "again")


def _describe_counts(counts: CopyCounts) -> str:
    passes = f" in {counts.passes} passes" if counts.passes > 1 else ""
    return f"copied {counts.copied}, already there {counts.already_there}, failed {counts.failed}{passes}"


def _describe_failures(counts: CopyCounts) -> str:
    reasons = ", ".join(f"{reason}: {n}" for reason, n in counts.reasons)
    return f"{reasons}; for example {counts.examples[0]}" if counts.examples else reasons


def _api_error(e: ApiError) -> str:
    return f"{e.meta.status} {e.message}"[:300]
