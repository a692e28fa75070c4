"""Redis adapters: the pending stream and its dead letters (``queue``), the dedup state (``dedup``), host
politeness and robots.txt (``hosts``), feed state and counters (``state``); key names and the client factory
(``keys``). The Lua scripts sit beside them."""

from __future__ import annotations

from ingest.stores.redis.dedup import RedisDedupStore, RedisStoryStore
from ingest.stores.redis.hosts import RedisHostLimiter, RedisRobotsCache
from ingest.stores.redis.keys import Keys, build_redis_client, connect_redis, delete_namespace
from ingest.stores.redis.queue import RedisPendingQueue
from ingest.stores.redis.state import RedisEpoch, RedisFeedStateStore, RedisStats
from ingest.stores.redis.workers import RedisWorkers

__all__ = [
    "Keys",
    "RedisDedupStore",
    "RedisEpoch",
    "RedisFeedStateStore",
    "RedisHostLimiter",
    "RedisPendingQueue",
    "RedisRobotsCache",
    "RedisStats",
    "RedisStoryStore",
    "RedisWorkers",
    "build_redis_client",
    "connect_redis",
    "delete_namespace",
]
