"""The ``pending`` stream between poll and processing, read through a consumer group, and its dead letters."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.models import FeedEntry, QueuedEntry, QueueHealth
from ingest.stores.redis.keys import Keys, is_cluster
from ingest.stores.redis.workers import RedisWorkers

QUEUED_TTL_SECONDS = 7 * 24 * 3600
QUEUED_CLAIM_SECONDS = 120


class RedisPendingQueue:
    """The ``pending`` stream between poll and processing, read through a consumer group."""

    def __init__(
        self, client: redis.Redis, prefix: str, group: str, reclaim_idle_seconds: int,
        workers: RedisWorkers | None = None,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix, is_cluster(client))
        self.group = group
        self.reclaim_idle_ms = reclaim_idle_seconds * 1000
        # The entries of a consumer whose lease is gone (and that has not read for a lease) are taken over at
        # once, not after reclaim_idle (none: only reclaim_idle).
        self.workers = workers
        self._group_ready = False

    @classmethod
    def for_settings(cls, client: redis.Redis, settings: Settings) -> RedisPendingQueue:
        """The queue under the settings' prefix, consumer group, reclaim time and workers' leases."""
        return cls(client, settings.redis.prefix, settings.pipeline.consumer_group,
                   settings.pipeline.reclaim_idle_seconds,
                   RedisWorkers(client, settings.redis.prefix, settings.pipeline.lease_seconds))

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.keys.pending, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    def enqueue(self, entries: Iterable[tuple[str, FeedEntry]]) -> int:
        """Add entries not already queued (by article id); returns how many were added."""
        fresh = self.mark_new(entries)
        self.append(fresh)
        return len(fresh)

    def mark_new(self, entries: Iterable[tuple[str, FeedEntry]]) -> list[tuple[str, FeedEntry]]:
        """The entries not already queued (by article id), each marked as queued for a short life: the first step
        of :meth:`enqueue`, which :meth:`append` completes. A crash between the steps lets the marks lapse, and the
        feed (whose state is saved only after the append) is read again and re-queued."""
        self._ensure_group()
        rows = list(entries)
        if not rows:
            return []
        marks = self.client.pipeline(transaction=False)
        for article_id, _entry in rows:
            marks.set(self.keys.queued(article_id), "1", nx=True, ex=QUEUED_CLAIM_SECONDS)
        return [row for row, marked in zip(rows, marks.execute(), strict=True) if marked]

    def append(self, rows: Sequence[tuple[str, FeedEntry]]) -> None:
        """Add entries that :meth:`mark_new` returned to the stream, in this order, and keep their marks for the
        week."""
        if not rows:
            return
        adds = self.client.pipeline(transaction=False)
        for article_id, entry in rows:
            adds.xadd(self.keys.pending, {"entry": entry.model_dump_json(), "article_id": article_id})
        for article_id, _entry in rows:
            adds.expire(self.keys.queued(article_id), QUEUED_TTL_SECONDS)
        adds.execute()

    def read_batch(self, consumer: str, count: int) -> list[QueuedEntry]:
        """Stale entries of crashed workers first, then new ones; each delivery is counted."""
        self._ensure_group()
        messages = self._take_over_dead(consumer, count)
        if len(messages) < count:
            reply: Any = self.client.xautoclaim(self.keys.pending, self.group, consumer,
                                                min_idle_time=self.reclaim_idle_ms, start_id="0-0",
                                                count=count - len(messages))
            messages.extend(reply[1])
        if len(messages) < count:
            wanted = count - len(messages)
            fresh: Any = self.client.xreadgroup(self.group, consumer, {self.keys.pending: ">"}, count=wanted)
            for _stream, items in fresh or []:
                messages.extend(items)
        counted = self.client.pipeline(transaction=False)
        for message_id, _fields in messages:
            counted.hincrby(self.keys.attempts, message_id, 1)
            counted.hget(self.keys.last_failure, message_id)
        replies = counted.execute()
        return [
            QueuedEntry(message_id, FeedEntry.model_validate_json(fields["entry"]), int(replies[2 * n]),
                        replies[2 * n + 1], _added_at(message_id))
            for n, (message_id, fields) in enumerate(messages)
        ]

    def _take_over_dead(self, consumer: str, count: int) -> list[tuple[str, Mapping[str, str]]]:
        """Up to ``count`` entries held by consumers whose lease is gone, claimed for ``consumer``."""
        if self.workers is None:
            return []
        found: Any = self.client.xinfo_consumers(self.keys.pending, self.group)
        holding = [str(c["name"]) for c in found if c["name"] != consumer and int(c["pending"]) > 0
                   and int(c["idle"]) >= self.workers.lease_ms]
        taken: list[tuple[str, Mapping[str, str]]] = []
        for dead in sorted(set(holding) - self.workers.alive(holding)):
            rows: Any = self.client.xpending_range(self.keys.pending, self.group, min="-", max="+",
                                                   count=count - len(taken), consumername=dead)
            if rows:
                claimed: Any = self.client.xclaim(self.keys.pending, self.group, consumer, 0,
                                                  [r["message_id"] for r in rows])
                taken.extend((message_id, fields) for message_id, fields in claimed if fields)
            if len(taken) >= count:
                break
        return taken

    def failed(self, message_id: str, why: str) -> None:
        """Remember why this delivery of an entry left it pending (the last reason is what its dead letter
        says if it never succeeds)."""
        self.client.hset(self.keys.last_failure, message_id, why[:300])

    def hand_back(self, message_ids: Sequence[str], consumer: str) -> None:
        """Give entries this consumer was delivered, and did not try, back to the group at once (a worker that
        stops): they look idle for ``reclaim_idle`` already, so the next batch read of any worker reclaims them,
        and this delivery does not count towards ``max_deliveries``."""
        if not message_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xclaim(self.keys.pending, self.group, consumer, 0, list(message_ids), idle=self.reclaim_idle_ms,
                    justid=True)
        for message_id in message_ids:
            pipe.hincrby(self.keys.attempts, message_id, -1)
        pipe.execute()

    def not_attempted(self, message_id: str) -> None:
        """This delivery did not try the entry (another worker holds its URL): it does not count towards
        ``max_deliveries``."""
        self.client.hincrby(self.keys.attempts, message_id, -1)

    def ack(self, message_ids: Sequence[str]) -> None:
        if not message_ids:
            return
        pipe = self.client.pipeline()
        pipe.xack(self.keys.pending, self.group, *message_ids)
        pipe.xdel(self.keys.pending, *message_ids)
        pipe.hdel(self.keys.attempts, *message_ids)
        pipe.hdel(self.keys.last_failure, *message_ids)
        pipe.execute()

    def dead_letter(
        self,
        item: QueuedEntry,
        reason: str,
        detail: str,
        stage: str = "process",
        document: Mapping[str, Any] | None = None,
    ) -> None:
        """Move an entry to the dead-letter stream with its reason (and the refused document, if the index
        refused it), then acknowledge it."""
        fields: dict[FieldT, EncodableT] = {
            "entry": item.entry.model_dump_json(),
            "reason": reason,
            "stage": stage,
            "detail": detail[:500],
            "deliveries": str(item.deliveries),
            "message_id": item.message_id,
        }
        if document is not None:
            fields["document"] = json.dumps(document, ensure_ascii=False)
        self.client.xadd(self.keys.dead, fields)
        self.ack([item.message_id])

    def pending_count(self) -> int:
        """Entries waiting, delivered or not: acknowledged entries are deleted from the stream."""
        return int(self.client.xlen(self.keys.pending))

    def health(self, stale_limit: int = 10_000, reasons_of_newest: int = 1_000) -> QueueHealth:
        """How the stream stands: entries waiting, never delivered, delivered but idle past ``reclaim_idle``
        (a worker died with them: the next batch read reclaims them; counted up to ``stale_limit``), and the
        dead letters, by reason among the newest ``reasons_of_newest`` (they may carry whole documents: the
        pipeline view asks every 30 seconds, so not all of them are read)."""
        self._ensure_group()
        pending = self.pending_count()
        groups: Any = self.client.xinfo_groups(self.keys.pending)
        group = next((g for g in groups if g["name"] == self.group), None)
        delivered = int(group["pending"]) if group else 0
        stale: Any = self.client.xpending_range(
            self.keys.pending, self.group, min="-", max="+", count=stale_limit, idle=self.reclaim_idle_ms
        ) if delivered else []
        newest: Any = self.client.xrevrange(self.keys.dead, count=reasons_of_newest)
        reasons = Counter(fields.get("reason", "") for _, fields in newest)
        return QueueHealth(
            pending=pending,
            unread=max(0, pending - delivered),
            stale=len(stale),
            oldest_stale_seconds=max((int(s["time_since_delivered"]) for s in stale), default=0) / 1000,
            dead_letters=int(self.client.xlen(self.keys.dead)),
            dead_by_reason=dict(sorted(reasons.items())),
        )

    def forget_idle_consumers(self, idle_seconds: int) -> list[str]:
        """Remove from the group the consumers that hold no entry and have not read for ``idle_seconds`` (one per
        ``ingest process`` command otherwise accumulates); returns their names. A consumer holding entries is
        kept: its entries are reclaimed by the next batch read, not lost with it."""
        self._ensure_group()
        consumers: Any = self.client.xinfo_consumers(self.keys.pending, self.group)
        gone = [c["name"] for c in consumers if int(c["pending"]) == 0 and int(c["idle"]) >= idle_seconds * 1000]
        for name in gone:
            self.client.xgroup_delconsumer(self.keys.pending, self.group, name)
        return gone

    def dead_letters(self, count: int = 100, reason: str | None = None) -> list[dict[str, Any]]:
        """The most recent dead letters (of one reason, if given), newest first."""
        raw: Any = self.client.xrevrange(self.keys.dead, count=count) if reason is None else self._dead_rows()
        rows = [{"id": message_id, **fields} for message_id, fields in raw]
        return [row for row in rows if reason is None or row["reason"] == reason][:count]

    def replay(self, ids: Sequence[str] = (), reason: str | None = None) -> int:
        """Put the chosen dead letters (by id, by reason, or all when neither is given) back on the pending
        stream, each in one transaction with its removal from the dead letters; returns how many. The entry is
        processed again from the start (fetch, extract, …) with a fresh delivery count."""
        self._ensure_group()
        replayed = 0
        for message_id, fields in self._chosen(ids, reason):
            pipe = self.client.pipeline()  # MULTI: never on both streams, never on neither
            pipe.xadd(self.keys.pending, {"entry": fields["entry"], "replayed_from": message_id})
            pipe.xdel(self.keys.dead, message_id)
            pipe.execute()
            replayed += 1
        return replayed

    def purge(self, ids: Sequence[str] = (), reason: str | None = None) -> int:
        """Delete the chosen dead letters (by id, by reason, or all when neither is given); returns how many."""
        chosen = [message_id for message_id, _ in self._chosen(ids, reason)]
        for start in range(0, len(chosen), 1000):
            self.client.xdel(self.keys.dead, *chosen[start : start + 1000])
        return len(chosen)

    def _dead_rows(self) -> list[tuple[str, dict[str, str]]]:
        rows: Any = self.client.xrevrange(self.keys.dead)
        return list(rows)

    def _chosen(self, ids: Sequence[str], reason: str | None) -> list[tuple[str, dict[str, str]]]:
        wanted = set(ids)
        rows = self._dead_rows()
        missing = wanted - {message_id for message_id, _ in rows}
        if missing:
            raise ConfigError(f"no dead letter {', '.join(sorted(missing))}; `ingest dlq list` shows their ids")
        return [
            (message_id, fields) for message_id, fields in rows
            if (not wanted or message_id in wanted) and (reason is None or fields.get("reason") == reason)
        ]


def _added_at(message_id: str) -> datetime | None:
    """When a stream entry was added: the milliseconds of its id (``<ms>-<seq>``), as Redis made it."""
    ms, _, _ = message_id.partition("-")
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms.isdigit() else None
