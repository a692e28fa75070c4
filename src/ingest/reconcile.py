"""Redis and the index agree. Redis remembers which articles are indexed (dedup marks), what is pending and each
feed's state; the index holds the documents. Either can lose its part alone: a Redis restarted without
persistence loses the stream and the marks; a search server restarted empty, a deleted index or an older
snapshot loses documents Redis still marks as indexed, so they would never be indexed again.

Each side keeps the same state id (an *epoch*: ``<prefix>:epoch`` in Redis, a document in ``<index>-state``).
:func:`check_state` runs whenever a runtime is built: a side without it, or a different one, stops the work with
one line saying what was lost and the way back, :func:`verify_index` (``ingest index verify --repair``). That
compares the marks with the documents (every id, or a sample for the maintenance DAG) and, repairing, forgets
the marks of documents the index lacks, restores marks from the documents Redis forgot, and clears the feeds'
validators: the next poll reads every feed whole and queues again what they still list.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ingest.config import Settings
from ingest.errors import StateLostError
from ingest.models import Mark, text_key
from ingest.redact import redact
from ingest.stores.elasticsearch import ElasticsearchSink
from ingest.stores.redis import RedisDedupStore, RedisEpoch, RedisFeedStateStore

_REPAIR = "run `ingest index verify --repair`, then `ingest poll`"
_CHUNK = 1000  # ids looked up in the index at once, and how often a long step says how far it is


def check_state(epoch: RedisEpoch, sink: ElasticsearchSink, name: str, redis_where: str, create: bool = True
                ) -> None:
    """Raise ``StateLostError`` when Redis and the index do not hold the same state id; give both one when
    neither has (a new deployment, or one from before state ids) unless ``create`` is False."""
    ours, theirs = epoch.get(), sink.epoch(name)
    if ours is not None and ours == theirs:
        return
    if ours is None and theirs is None:
        if not create:
            return
        # Two workers starting at once: the first one's id is kept, both write it to the index.
        sink.set_epoch(name, epoch.create(uuid.uuid4().hex))
        return
    if ours is None:
        raise StateLostError(
            f"Redis at {redact(redis_where)} lost the pipeline's state (pending entries, dedup marks, feed state): "
            f"the index {sink.state_index} knows state {str(theirs)[:8]}, Redis knows none (restarted without "
            f"persistence, flushed or replaced); {_REPAIR} to queue again what the feeds still list")
    if theirs is None:
        raise StateLostError(
            f"the index lost documents: {sink.state_index} no longer holds the state id Redis has ({ours[:8]}) "
            f"(the search server restarted empty, the index was deleted or an older snapshot restored); {_REPAIR} "
            "to index again what is missing")
    raise StateLostError(
        f"Redis (state {ours[:8]}) and the index (state {str(theirs)[:8]}) come from different deployments; "
        f"{_REPAIR} to make them agree")


@dataclass
class Verification:
    """What ``ingest index verify`` found and did."""

    checked: int  # ids Redis marks as indexed that were looked up in the index
    sampled: bool
    missing: list[str] = field(default_factory=list)  # marked as indexed, not in the index
    unmarked: list[str] = field(default_factory=list)  # in the index (recent), not marked in Redis
    forgot: int = 0
    restored: int = 0
    feeds_cleared: int = 0

    @property
    def consistent(self) -> bool:
        return not self.missing and not self.unmarked


@dataclass(frozen=True)
class VerifyProgress:
    """How far :func:`verify_index` is: in ``step`` (``marks``: ids marked as indexed read from Redis;
    ``lookups``: those looked up in the index; ``documents``: the index's recent documents read), ``done`` of
    ``total`` (None: not known ahead), and ``found`` so far (missing documents; documents Redis does not mark)."""

    step: Literal["marks", "lookups", "documents"]
    done: int
    total: int | None = None
    found: int = 0


def verify_index(
    dedup: RedisDedupStore, sink: ElasticsearchSink, feeds: RedisFeedStateStore, epoch: RedisEpoch, name: str,
    seen_days: int, now: datetime, repair: bool = False, sample: int | None = None,
    on_progress: Callable[[VerifyProgress], None] | None = None,
) -> Verification:
    """Compare the marks with the documents (all, or ``sample`` marked ids without the reverse check) and, with
    ``repair``, make them agree and give both sides the same state id. ``on_progress`` as each step begins, every
    1,000 ids or documents, and as it ends."""

    def tell(where: VerifyProgress) -> None:
        if on_progress is not None:
            on_progress(where)

    if sample:
        ids = dedup.sample_indexed_ids(now, sample)
    else:
        ids = []
        tell(VerifyProgress("marks", 0))
        for article_id in dedup.indexed_ids(now):
            ids.append(article_id)
            if len(ids) % _CHUNK == 0:
                tell(VerifyProgress("marks", len(ids)))
        tell(VerifyProgress("marks", len(ids), len(ids)))
    result = Verification(checked=len(ids), sampled=bool(sample))
    tell(VerifyProgress("lookups", 0, len(ids)))
    for start in range(0, len(ids), _CHUNK):
        result.missing.extend(sink.missing(ids[start : start + _CHUNK]))
        tell(VerifyProgress("lookups", min(start + _CHUNK, len(ids)), len(ids), len(result.missing)))
    restore: list[tuple[str, Mark]] = []
    if not sample:
        marked = set(ids)
        # Marks live one to two generations of seen_days: only documents fetched since the older one began
        # are expected to be marked.
        since = datetime.fromtimestamp((int(now.timestamp()) // (86400 * seen_days) - 1) * 86400 * seen_days, UTC)
        fields = ("content_hash", "story_id", "fetched_at", "published_at")
        read = 0
        tell(VerifyProgress("documents", 0))
        for doc_id, doc in sink.recent(since, fields):
            read += 1
            if doc_id not in marked and doc.get("content_hash"):
                result.unmarked.append(doc_id)
                restore.append((doc_id, _mark_of(doc_id, doc)))
            if read % _CHUNK == 0:
                tell(VerifyProgress("documents", read, found=len(result.unmarked)))
        tell(VerifyProgress("documents", read, read, len(result.unmarked)))
    if repair:
        dedup.forget(result.missing, now)
        result.forgot = len(result.missing)
        for doc_id, mark in restore:
            dedup.commit(doc_id, mark, now)
        result.restored = len(restore)
        if not result.consistent:
            result.feeds_cleared = feeds.clear_validators()
        state = epoch.get() or sink.epoch(name) or uuid.uuid4().hex
        epoch.set(state)
        sink.set_epoch(name, state)
    return result


def _mark_of(doc_id: str, doc: dict[str, object]) -> Mark:
    return Mark(text_key(str(doc["content_hash"])), _seconds(doc.get("published_at")), _seconds(doc.get("fetched_at")),
                str(doc.get("story_id") or doc_id))


def _seconds(value: object) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def first(ids: Iterable[str], n: int = 5) -> str:
    listed = list(ids)
    return ", ".join(listed[:n]) + (f" … ({len(listed) - n} more)" if len(listed) > n else "")


def verify_settings(settings: Settings, repair: bool = False, sample: int | None = None,
                    on_progress: Callable[[VerifyProgress], None] | None = None) -> Verification:
    """:func:`verify_index` on the stores the settings name (``ingest index verify``, the maintenance DAG)."""
    from ingest.stores.elasticsearch import build_es_client, check_search_server
    from ingest.stores.redis import connect_redis

    client = connect_redis(settings.redis)
    es = build_es_client(settings.elasticsearch)
    prefix = settings.redis.prefix
    try:
        check_search_server(es, ", ".join(settings.elasticsearch.hosts))
        return verify_index(
            RedisDedupStore(client, prefix, settings.dedup), ElasticsearchSink(es, settings.elasticsearch),
            RedisFeedStateStore(client, prefix), RedisEpoch(client, prefix), prefix, settings.dedup.seen_days,
            datetime.now(UTC), repair=repair, sample=sample, on_progress=on_progress)
    finally:
        es.close()
        client.close()

