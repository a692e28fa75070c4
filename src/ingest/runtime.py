"""Builds the clients and stores of one worker from settings: the only place they are constructed."""

from __future__ import annotations

from ingest.config import Settings
from ingest.enrich import NerModels
from ingest.http import build_http_client
from ingest.pipeline import Runtime
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, check_search_server
from ingest.stores.redis import (
    RedisDedupStore,
    RedisFeedStateStore,
    RedisPendingQueue,
    RedisStats,
    build_redis_client,
)


def build_runtime(settings: Settings, models: NerModels | None = None) -> Runtime:
    """Connect to Redis and the search server (failing fast with a clear error) and wire the stores."""
    redis_client = build_redis_client(settings.redis.url)
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    prefix = settings.redis.prefix
    return Runtime(
        settings=settings,
        queue=RedisPendingQueue(
            redis_client, prefix, settings.pipeline.consumer_group, settings.pipeline.reclaim_idle_seconds
        ),
        dedup=RedisDedupStore(redis_client, prefix),
        feed_state=RedisFeedStateStore(redis_client, prefix),
        sink=ElasticsearchSink(es, settings.elasticsearch),
        http=build_http_client(settings.http),
        models=models or NerModels(settings.nlp),
        stats=RedisStats(redis_client, prefix),
    )
