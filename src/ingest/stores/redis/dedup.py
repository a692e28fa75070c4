"""The dedup state: the exact level's marks, text owners and claims (:class:`RedisDedupStore`), and the
near-duplicate and story state kept by ``stories.lua`` (:class:`RedisStoryStore`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import redis

from ingest.config import DedupSettings
from ingest.models import Assignment, Mark, Signature, text_key
from ingest.stores.redis.keys import Keys, is_cluster, load_script
from ingest.stores.redis.workers import RedisWorkers

# stories.lua keeps an id after a one-byte length whose top bit marks hex ids (the pipeline's) kept as bytes.
MAX_ID_BYTES = 127


class RedisDedupStore:
    """The exact level: marks per URL, the owner of each text, and short claims.

    Marks and owners are fields of hashes (one per bucket of ids or text keys) rather than a key each: feeds
    make them for every entry, for ``seen_days``, and a URL costs about 140 bytes in hashes of ~90 fields
    against some 380 alone in its hash, as in a key of its own (measured with Redis 7.0). Hash fields cannot
    expire one by one (no HEXPIRE before Redis 7.4), so the hashes belong to a generation of ``seen_days``
    days: written in the current one, read in it and the previous one, gone after that. A URL is remembered
    at least ``seen_days`` and at most twice that; memory stays bounded.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, settings: DedupSettings | None = None,
        workers: RedisWorkers | None = None,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.workers = workers  # claims of workers whose lease is gone are taken over (none: never)
        self._take = client.register_script(load_script("claim_take.lua"))
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
            for key in self._mark_keys(article_id, current):
                pipe.hget(key, article_id)
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
        """Hold the URL for ``ttl_seconds``: free, already ours, or held by a worker whose lease is gone."""
        key = self.keys.claim(article_id)
        if self.client.set(key, owner, nx=True, ex=ttl_seconds):
            return True
        holder: Any = self.client.get(key)
        if holder == owner:
            return True
        if holder is None or self.workers is None or self.workers.alive([holder]):
            return False  # (None: it lapsed just now; the entry is tried again later)
        return bool(self._take(keys=[key], args=[holder, owner, ttl_seconds]))

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
        for key in (self.keys.claim(article_id), self.keys.queued(article_id)):  # one key a command: a cluster
            pipe.delete(key)  # pipeline refuses several, even in one slot

    def indexed_ids(self, now: datetime) -> Iterator[str]:
        """Every article id marked as indexed (its mark has a story) in the generations read, once each."""
        found: set[str] = set()
        current = self._generation(now)
        for generation in (current, current - 1):
            for key in self.client.scan_iter(f"{self.keys.prefix}:seen:{generation}:*", count=1000):
                for article_id, raw in self.client.hscan_iter(key, count=1000):
                    if " *" in raw and article_id not in found:
                        found.add(article_id)
                        yield article_id

    def sample_indexed_ids(self, now: datetime, count: int) -> list[str]:
        """About ``count`` ids marked as indexed in the current generation, spread over its buckets (SCAN order
        is the hash table's, two random fields from each): a cheap check of a large store."""
        found: set[str] = set()
        pattern = f"{self.keys.prefix}:seen:{self._generation(now)}:*"
        for key in self.client.scan_iter(pattern, count=1000):
            pairs: Any = self.client.hrandfield(key, 2, withvalues=True)
            found.update(pairs[n] for n in range(0, len(pairs), 2) if " *" in pairs[n + 1])
            if len(found) >= count:
                break
        return sorted(found)[:count]

    def forget(self, article_ids: Sequence[str], now: datetime) -> None:
        """Drop the marks of these ids (a re-poll queues their URLs again)."""
        current = self._generation(now)
        pipe = self.client.pipeline(transaction=False)
        for article_id in article_ids:
            for key in self._mark_keys(article_id, current):
                pipe.hdel(key, article_id)
        pipe.execute()

    def _mark_keys(self, article_id: str, current: int) -> tuple[str, str]:
        """The hashes an id's mark may be in: its bucket in the current generation, then in the one before."""
        bucket = _bucket(article_id, self.buckets)
        return self.keys.marks(current, bucket), self.keys.marks(current - 1, bucket)

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
        script = load_script("stories.lua")
        self._assign = client.register_script(script)
        if is_cluster(client):  # a cluster pipeline cannot load a script on its own: every master has it first
            client.script_load(script)

    def assign(
        self, article_id: str, signature: Signature, now: datetime, insert: bool = True,
        kept_story: str | None = None,
    ) -> Assignment:
        # The script names its keys itself (all under one hash tag); the tag's key routes it on a Redis Cluster.
        reply: Any = self._assign(keys=[self.keys.stories],
                                  args=self.script_args(article_id, signature, now, insert, kept_story))
        kind, story_id, duplicate_of, score = reply
        return Assignment(story_id=story_id, duplicate_of=duplicate_of or None, score=float(score), kind=kind)

    def queue_assign(self, pipe: redis.client.Pipeline, article_id: str, signature: Signature, now: datetime) -> None:
        """``assign`` (keeping the article) queued on a pipeline, for bulk loads; the replies are not read."""
        self._assign(keys=[self.keys.stories], args=self.script_args(article_id, signature, now, True), client=pipe)

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
            s.max_postings, s.max_candidates, 1 if insert else 0, kept_story or "", signature.day, s.story_days,
            signature.site, s.same_site_penalty,
        ]
