"""Builds the clients and stores of one worker from settings: the only place they are constructed."""

from __future__ import annotations

from ingest.config import Settings
from ingest.enrich import NerModels
from ingest.fetch import PageFetcher
from ingest.pipeline import Runtime
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, check_search_server
from ingest.stores.redis import (
    RedisDedupStore,
    RedisFeedStateStore,
    RedisHostLimiter,
    RedisPendingQueue,
    RedisRobotsCache,
    RedisStats,
    RedisStoryStore,
    build_redis_client,
)


def build_runtime(settings: Settings, models: NerModels | None = None, search: bool = True) -> Runtime:
    """Connect to Redis and the search server (failing fast with a clear error) and wire the stores.

    ``search=False`` skips the search-server check, for workers that only poll feeds.
    """
    redis_client = build_redis_client(settings.redis.url)
    es = build_es_client(settings.elasticsearch)
    if search:
        check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    prefix = settings.redis.prefix
    limiter = RedisHostLimiter(
        redis_client, prefix, settings.http.host_min_interval_seconds, settings.http.host_max_concurrent,
        hold_seconds=settings.http.total_timeout + settings.http.connect_timeout,
    )
    robots = RedisRobotsCache(redis_client, prefix, settings.http.robots_cache_hours * 3600)
    return Runtime(
        settings=settings,
        queue=RedisPendingQueue.for_settings(redis_client, settings),
        dedup=RedisDedupStore(redis_client, prefix, settings.dedup),
        stories=RedisStoryStore(redis_client, prefix, settings.dedup),
        feed_state=RedisFeedStateStore(redis_client, prefix),
        sink=ElasticsearchSink(es, settings.elasticsearch),
        fetcher=PageFetcher(settings.http, limiter, robots),
        models=models or NerModels(settings.nlp),
        stats=RedisStats(redis_client, prefix),
        limiter=limiter,
        robots=robots,
    )


def build_poll_runtime(settings: Settings) -> Runtime:
    """A runtime for polling only: Redis, no search server needed."""
    return build_runtime(settings, search=False)
