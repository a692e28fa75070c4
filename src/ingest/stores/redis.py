"""Redis adapters: the pending stream, its dead letters, dedup marks and the operators' counters.

Keys are ``<prefix>:<kind>:<id>``; the keys of one article carry its id in braces so that a Redis
Cluster keeps them in one hash slot. The dedup state is kept in hashes by bucket instead (a key per article
would cost more than what it holds): the exact level's by generation, the story store's by day, all of the
latter under one hash tag so that its script sees them together.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from ingest.config import DedupSettings, Settings
from ingest.dedup import text_key
from ingest.errors import ConfigError, ServiceUnavailableError
from ingest.models import Assignment, FeedEntry, FeedState, Mark, QueuedEntry, Signature

logger = logging.getLogger(__name__)

QUEUED_TTL_SECONDS = 7 * 24 * 3600
# stories.lua keeps an id after a one-byte length whose top bit marks hex ids (the pipeline's) kept as bytes.
MAX_ID_BYTES = 127
QUEUED_CLAIM_SECONDS = 120
# The hourly counters (throughput in the pipeline view) are kept a week.
HOURLY_DAYS = 8


def build_redis_client(url: str) -> redis.Redis:
    """A client that fails fast with a clear error when the server is not there."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, socket_timeout=30)
    try:
        client.ping()
    except redis.ConnectionError as e:
        raise ServiceUnavailableError(
            "Redis", url, "start it (`ingest services start` for the embedded one) or set INGEST_REDIS__URL"
        ) from e
    return client


class Keys:
    """Every Redis key name the pipeline uses, in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.pending = f"{prefix}:stream:pending"
        self.dead = f"{prefix}:stream:dead"
        self.attempts = f"{prefix}:attempts"
        self.stats = f"{prefix}:stats"
        self.feed_stats = f"{prefix}:feedstats"
        # Near-duplicate and story state (stories.lua names the keys under it; one hash tag, one slot). "v2":
        # records by day; the first layout's keys (records by number) are not read, they expire in a week.
        self.stories = f"{prefix}:{{stories}}:v2"

    def stats_hour(self, at: datetime) -> str:
        return f"{self.prefix}:stats:hour:{at.astimezone(UTC):%Y%m%d%H}"

    def feed(self, feed_id: str) -> str:
        return f"{self.prefix}:feed:{{{feed_id}}}"

    def marks(self, generation: int, bucket: int) -> str:
        return f"{self.prefix}:seen:{generation}:{bucket}"

    def texts(self, generation: int, bucket: int) -> str:
        return f"{self.prefix}:text:{generation}:{bucket}"

    def claim(self, article_id: str) -> str:
        return f"{self.prefix}:claim:{{{article_id}}}"

    def queued(self, article_id: str) -> str:
        return f"{self.prefix}:queued:{{{article_id}}}"

    def host_next(self, host: str) -> str:
        return f"{self.prefix}:host:{{{host}}}:next"

    def host_holder(self, host: str) -> str:
        return f"{self.prefix}:host:{{{host}}}:holder"

    def host_inflight(self, host: str) -> str:
        return f"{self.prefix}:host:{{{host}}}:inflight"

    def robots(self, origin: str) -> str:
        return f"{self.prefix}:robots:{origin}"


@dataclass(frozen=True)
class QueueHealth:
    """The pending stream at one moment (:meth:`RedisPendingQueue.health`)."""

    pending: int
    unread: int
    stale: int
    oldest_stale_seconds: float
    dead_letters: int
    dead_by_reason: dict[str, int]


class RedisPendingQueue:
    """The ``pending`` stream between poll and processing, read through a consumer group."""

    def __init__(self, client: redis.Redis, prefix: str, group: str, reclaim_idle_seconds: int) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.group = group
        self.reclaim_idle_ms = reclaim_idle_seconds * 1000
        self._group_ready = False

    @classmethod
    def for_settings(cls, client: redis.Redis, settings: Settings) -> RedisPendingQueue:
        """The queue under the settings' prefix, consumer group and reclaim time."""
        return cls(client, settings.redis.prefix, settings.pipeline.consumer_group,
                   settings.pipeline.reclaim_idle_seconds)

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
        self._ensure_group()
        rows = list(entries)
        if not rows:
            return 0
        # Marked with a short life first, added, then kept for the week: a crash between the steps lets the
        # marks lapse, and the feed (whose state is saved only after this) is read again and re-queued.
        marks = self.client.pipeline(transaction=False)
        for article_id, _entry in rows:
            marks.set(self.keys.queued(article_id), "1", nx=True, ex=QUEUED_CLAIM_SECONDS)
        fresh = [row for row, marked in zip(rows, marks.execute(), strict=True) if marked]
        adds = self.client.pipeline(transaction=False)
        for article_id, entry in fresh:
            adds.xadd(self.keys.pending, {"entry": entry.model_dump_json(), "article_id": article_id})
        for article_id, _entry in fresh:
            adds.expire(self.keys.queued(article_id), QUEUED_TTL_SECONDS)
        adds.execute()
        return len(fresh)

    def read_batch(self, consumer: str, count: int) -> list[QueuedEntry]:
        """Stale entries of crashed workers first, then new ones; each delivery is counted."""
        self._ensure_group()
        messages: list[tuple[str, Mapping[str, str]]] = []
        reply: Any = self.client.xautoclaim(
            self.keys.pending, self.group, consumer, min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=count
        )
        messages.extend(reply[1])
        if len(messages) < count:
            wanted = count - len(messages)
            fresh: Any = self.client.xreadgroup(self.group, consumer, {self.keys.pending: ">"}, count=wanted)
            for _stream, items in fresh or []:
                messages.extend(items)
        batch = []
        for message_id, fields in messages:
            deliveries = int(self.client.hincrby(self.keys.attempts, message_id, 1))
            batch.append(QueuedEntry(message_id, FeedEntry.model_validate_json(fields["entry"]), deliveries))
        return batch

    def ack(self, message_ids: Sequence[str]) -> None:
        if not message_ids:
            return
        pipe = self.client.pipeline()
        pipe.xack(self.keys.pending, self.group, *message_ids)
        pipe.xdel(self.keys.pending, *message_ids)
        pipe.hdel(self.keys.attempts, *message_ids)
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


class RedisDedupStore:
    """The exact level: marks per URL, the owner of each text, and short claims.

    Marks and owners are fields of hashes (one per bucket of ids or text keys) rather than a key each: feeds
    make them for every entry, for ``seen_days``, and a URL costs about 140 bytes in hashes of ~90 fields
    against some 380 alone in its hash, as in a key of its own (measured with Redis 7.0). Hash fields cannot
    expire one by one (no HEXPIRE before Redis 7.4), so the hashes belong to a generation of ``seen_days``
    days: written in the current one, read in it and the previous one, gone after that. A URL is remembered
    at least ``seen_days`` and at most twice that; memory stays bounded.
    """

    def __init__(self, client: redis.Redis, prefix: str, settings: DedupSettings | None = None) -> None:
        self.client = client
        self.keys = Keys(prefix)
        s = settings or DedupSettings()
        self.seen_days = s.seen_days
        self.buckets = exact_buckets(s)

    def marks(self, article_ids: Sequence[str], now: datetime) -> list[Mark | None]:
        """The mark of each id, None for a URL not seen (or forgotten), in one round trip."""
        if not article_ids:
            return []
        current = self._generation(now)
        pipe = self.client.pipeline(transaction=False)
        for article_id in article_ids:
            bucket = _bucket(article_id, self.buckets)
            pipe.hget(self.keys.marks(current, bucket), article_id)
            pipe.hget(self.keys.marks(current - 1, bucket), article_id)
        found = pipe.execute()
        return [_decode_mark(article_id, found[2 * n] or found[2 * n + 1])
                for n, article_id in enumerate(article_ids)]

    def owner_of(self, text_hash: str, now: datetime) -> str | None:
        key, current = text_key(text_hash), self._generation(now)
        bucket = _bucket(key, self.buckets)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.texts(current, bucket), key)
        pipe.hget(self.keys.texts(current - 1, bucket), key)
        ours, earlier = pipe.execute()
        owner = ours or earlier
        return str(owner) if owner is not None else None

    def claim(self, article_id: str, owner: str, ttl_seconds: int) -> bool:
        key = self.keys.claim(article_id)
        if self.client.set(key, owner, nx=True, ex=ttl_seconds):
            return True
        return self.client.get(key) == owner

    def release(self, article_id: str, owner: str) -> None:
        key = self.keys.claim(article_id)
        if self.client.get(key) == owner:
            self.client.delete(key)

    def remember(self, article_id: str, mark: Mark, now: datetime) -> None:
        """Keep a URL's mark (its text was already indexed, under it or another URL) and free its claim."""
        pipe = self.client.pipeline(transaction=False)
        self._queue_mark(pipe, article_id, mark, now)
        pipe.execute()

    def commit(self, article_id: str, mark: Mark, now: datetime, entry_id: str | None = None) -> None:
        """After the index write: keep the article's mark, own its text if no article did, and mark the feed's
        URL (``entry_id``, when another than the article's) as seen; free the claim."""
        pipe = self.client.pipeline(transaction=False)
        self.queue_commit(pipe, article_id, mark, now, entry_id)
        pipe.execute()

    def queue_commit(
        self, pipe: redis.client.Pipeline, article_id: str, mark: Mark, now: datetime, entry_id: str | None = None,
    ) -> None:
        """``commit`` queued on a pipeline, for bulk loads."""
        self._queue_mark(pipe, article_id, mark, now)
        if entry_id is not None and entry_id != article_id:
            self._queue_mark(pipe, entry_id, mark.seen_only(), now)
        key = self.keys.texts(self._generation(now), _bucket(mark.text_key, self.buckets))
        pipe.hsetnx(key, mark.text_key, article_id)
        pipe.expire(key, self._ttl(now), nx=True)

    def _queue_mark(self, pipe: redis.client.Pipeline, article_id: str, mark: Mark, now: datetime) -> None:
        key = self.keys.marks(self._generation(now), _bucket(article_id, self.buckets))
        pipe.hset(key, article_id, _encode_mark(article_id, mark))
        pipe.expire(key, self._ttl(now), nx=True)
        # The mark now keeps a re-poll from queueing the URL again; dropping the "queued" mark lets a later
        # update of the entry be queued (a poll racing this at worst queues an entry found unchanged).
        pipe.delete(self.keys.claim(article_id), self.keys.queued(article_id))

    def _generation(self, now: datetime) -> int:
        return int(now.timestamp()) // (86400 * self.seen_days)

    def _ttl(self, now: datetime) -> int:
        """Seconds until the end of the generation after the current one."""
        return (self._generation(now) + 2) * 86400 * self.seen_days - int(now.timestamp())


def exact_buckets(settings: DedupSettings) -> int:
    """Hashes per generation of exact marks, sized like the postings' (``buckets_per_day``): those take about
    ``max_fingerprints + posted_keywords`` fields per article a day, a generation one per article a day of it."""
    per_article = settings.max_fingerprints + settings.posted_keywords
    return max(1, settings.buckets_per_day * settings.seen_days // per_article)


def _bucket(value: str, buckets: int) -> int:
    return zlib.crc32(value.encode("utf-8")) % buckets


def _encode_mark(article_id: str, mark: Mark) -> str:
    """``<text key> <stamp> <checked at>``, then for an indexed article `` *`` and its story unless that is its
    own: at most 60 characters for the pipeline's ids, under the 64 of Redis' compact hashes (a longer value
    turns its whole hash into a table several times the size)."""
    head = f"{mark.text_key} {mark.stamp} {mark.checked_at}"
    if mark.story_id is None:
        return head
    return f"{head} *{'' if mark.story_id == article_id else mark.story_id}"


def _decode_mark(article_id: str, raw: str | None) -> Mark | None:
    if raw is None:
        return None
    parts = raw.split(" ", 3)
    key, stamp, checked_at = parts[0], int(parts[1]), int(parts[2])
    if len(parts) < 4:
        return Mark(key, stamp, checked_at)
    return Mark(key, stamp, checked_at, parts[3][1:] or article_id)


class RedisStoryStore:
    """Near-duplicates and stories over the last ``window_days`` days, decided and kept by one Redis script
    (``stories.lua``), so the comparison and the insert are atomic."""

    def __init__(self, client: redis.Redis, prefix: str, settings: DedupSettings) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.settings = settings
        source = resources.files("ingest.stores").joinpath("stories.lua").read_text(encoding="utf-8")
        self._assign = client.register_script(source)

    def assign(
        self, article_id: str, signature: Signature, now: datetime, insert: bool = True,
        kept_story: str | None = None,
    ) -> Assignment:
        reply: Any = self._assign(args=self.script_args(article_id, signature, now, insert, kept_story))
        kind, story_id, duplicate_of, score = reply
        return Assignment(story_id=story_id, duplicate_of=duplicate_of or None, score=float(score), kind=kind)

    def queue_assign(self, pipe: redis.client.Pipeline, article_id: str, signature: Signature, now: datetime) -> None:
        """``assign`` (keeping the article) queued on a pipeline, for bulk loads; the replies are not read."""
        self._assign(args=self.script_args(article_id, signature, now, True), client=pipe)

    def script_args(
        self, article_id: str, signature: Signature, now: datetime, insert: bool, kept_story: str | None = None,
    ) -> list[Any]:
        s = self.settings
        if max(len(i.encode("utf-8")) for i in (article_id, kept_story or "")) > MAX_ID_BYTES:
            raise ValueError(f"the story store keeps ids of at most {MAX_ID_BYTES} bytes: {article_id!r}")
        return [
            self.keys.stories, article_id, int(now.timestamp() // 86400), s.window_days,
            (s.window_days + 1) * 86400, s.buckets_per_day, len(signature.fingerprints), len(signature.keywords),
            s.posted_keywords, signature.packed(), s.min_shared, s.duplicate_containment, s.story_similarity,
            s.max_postings, s.max_candidates, 1 if insert else 0, kept_story or "",
        ]


def delete_namespace(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix:`` (a throwaway namespace: ``ingest cluster``, evaluations, tests)."""
    batch = list(client.scan_iter(f"{prefix}:*", count=1000))
    while batch:
        client.delete(*batch[:1000])
        batch = batch[1000:]


class RedisFeedStateStore:
    """Per-feed poll state (validators, body hash, schedule and health) as one JSON value per feed."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, feed_id: str) -> FeedState:
        raw: Any = self.client.get(self.keys.feed(feed_id))
        return FeedState.model_validate_json(raw) if raw else FeedState()

    def put(self, feed_id: str, state: FeedState) -> None:
        self.client.set(self.keys.feed(feed_id), state.model_dump_json(exclude_defaults=True))


# Per host, on the Redis server's clock so that every worker agrees:
#   next      the earliest time (ms) a request may start; pushed forward by a 429/503 pause;
#   holder    the one request that was granted and has not had its answer yet (a lease, so a crashed worker
#             does not block the host for longer than hold_ms);
#   inflight  leases of the requests in flight (until their body is read), at most max_inflight.
# The interval runs from the moment the previous request got its answer, not from its grant: that moment
# is after the server saw the request, so the server sees starts at least `interval` apart however late the
# client actually sent (a busy event loop can delay a granted request by 100 ms and more).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_inflight, hold_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local poll_ms = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then
  return poll_ms
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= max_inflight then
  return poll_ms
end
local next_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_ms > now then
  return next_ms - now
end
redis.call('SET', KEYS[2], token, 'PX', hold_ms)
redis.call('ZADD', KEYS[3], now + hold_ms, token)
redis.call('PEXPIRE', KEYS[3], hold_ms)
return 0
"""

# The granted request got its answer (or failed): the next one may start `interval` from now.
_ANSWERED = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local next_ms = now + tonumber(ARGV[2])
if next_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], next_ms, 'PX', tonumber(ARGV[2]) + 1000)
end
return 1
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""


class RedisHostLimiter:
    """Per-host politeness for every worker and DAG run: request starts at least ``min_interval`` seconds
    after the previous request to the host was answered, and at most ``max_inflight`` requests in flight."""

    def __init__(
        self, client: redis.Redis, prefix: str, min_interval: float, max_inflight: int, hold_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.interval_ms = int(min_interval * 1000)
        self.hold_ms = int(hold_seconds * 1000)
        self.max_inflight = max_inflight
        # How soon to ask again while another request of the host waits for its answer.
        self.poll_ms = max(10, min(100, self.interval_ms // 4 or 10))
        self._acquire = client.register_script(_ACQUIRE)
        self._answered = client.register_script(_ANSWERED)
        self._penalize = client.register_script(_PENALIZE)

    def _host_keys(self, host: str) -> list[str]:
        return [self.keys.host_next(host), self.keys.host_holder(host), self.keys.host_inflight(host)]

    def try_acquire(self, host: str) -> tuple[str | None, float]:
        token = uuid.uuid4().hex
        wait_ms: Any = self._acquire(keys=self._host_keys(host),
                                     args=[self.max_inflight, self.hold_ms, token, self.poll_ms])
        return (token, 0.0) if int(wait_ms) == 0 else (None, int(wait_ms) / 1000)

    def answered(self, host: str, token: str) -> None:
        self._answered(keys=self._host_keys(host)[:2], args=[token, self.interval_ms])

    def release(self, host: str, token: str) -> None:
        self.answered(host, token)  # a request that failed before its answer frees the host too
        self.client.zrem(self.keys.host_inflight(host), token)

    def penalize(self, host: str, seconds: float) -> None:
        self._penalize(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])


class RedisRobotsCache:
    """robots.txt bodies per origin, kept for a while (an empty string: the site has none)."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: float) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.ttl = max(1, int(ttl_seconds))

    def get(self, origin: str) -> str | None:
        value: Any = self.client.get(self.keys.robots(origin))
        return None if value is None else str(value)

    def put(self, origin: str, body: str) -> None:
        self.client.set(self.keys.robots(origin), body, ex=self.ttl)


class RedisStats:
    """Counters operators read (``ingest status``, the Airflow plugin): ``stage/reason`` → count."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def add(self, counts: Mapping[str, int], feed_counts: Mapping[str, int] | None = None,
            at: datetime | None = None) -> None:
        """Add to the running totals, and to the counters of the hour ``at`` falls in (kept HOURLY_DAYS)."""
        pipe = self.client.pipeline()
        hour = self.keys.stats_hour(at) if at is not None else None
        for name, value in counts.items():
            if value:
                pipe.hincrby(self.keys.stats, name, value)
                if hour:
                    pipe.hincrby(hour, name, value)
        if hour:
            pipe.expire(hour, HOURLY_DAYS * 86400)
        for name, value in (feed_counts or {}).items():
            if value:
                pipe.hincrby(self.keys.feed_stats, name, value)
        pipe.execute()

    def hourly(self, now: datetime, hours: int = 24) -> list[tuple[datetime, dict[str, int]]]:
        """The counters of each of the last ``hours`` hours, the current one included, oldest first."""
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        starts = [current - timedelta(hours=n) for n in range(hours - 1, -1, -1)]
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self.keys.stats_hour(start))
        return [(start, {str(k): int(v) for k, v in raw.items()})
                for start, raw in zip(starts, pipe.execute(), strict=True)]

    def read(self) -> dict[str, int]:
        raw: Any = self.client.hgetall(self.keys.stats)
        return {str(k): int(v) for k, v in raw.items()}

    def read_feeds(self) -> dict[str, int]:
        raw: Any = self.client.hgetall(self.keys.feed_stats)
        return {str(k): int(v) for k, v in raw.items()}

    def dump(self) -> str:
        return json.dumps(self.read(), sort_keys=True)
