"""An in-process ``DedupStore`` for batch tools (``ingest cluster``) that must run without a server.

The pipeline itself always uses :class:`ingest.stores.redis.RedisDedupStore`; both run the same
dedup code in :mod:`ingest.dedup`.
"""

from __future__ import annotations

from collections.abc import Sequence


class MemoryDedupStore:
    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._claims: dict[str, str] = {}
        self._hashes: dict[str, str] = {}

    def is_seen(self, article_id: str) -> bool:
        return article_id in self._seen

    def seen_many(self, article_ids: Sequence[str]) -> list[bool]:
        return [a in self._seen for a in article_ids]

    def claim(self, article_id: str, owner: str, ttl_seconds: int) -> bool:
        return self._claims.setdefault(article_id, owner) == owner

    def release(self, article_id: str, owner: str) -> None:
        if self._claims.get(article_id) == owner:
            del self._claims[article_id]

    def story_of_hash(self, content_hash: str) -> str | None:
        return self._hashes.get(content_hash)

    def mark_seen(self, article_id: str) -> None:
        self._seen.add(article_id)
        self._claims.pop(article_id, None)

    def commit(self, article_id: str, content_hash: str) -> str:
        self._seen.add(article_id)
        return self._hashes.setdefault(content_hash, article_id)
