"""Every Redis key name the pipeline uses, in one place, and the client factory.

Keys are ``<prefix>:<kind>:<id>``; the keys of one article carry its id in braces so that a Redis Cluster keeps
them in one hash slot. The dedup state is kept in hashes by bucket instead (a key per article would cost more
than what it holds): the exact level's by generation, the story store's by day, all of the latter under one
hash tag so that its script sees them together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, cast

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from ingest.errors import ConfigError, ServiceUnavailableError
from ingest.redact import redact

if TYPE_CHECKING:
    from ingest.config import RedisSettings


def connect_redis(settings: RedisSettings) -> redis.Redis:
    """:func:`build_redis_client` for the Redis settings (a cluster client when ``cluster`` is set)."""
    return build_redis_client(settings.url, settings.cluster)


def build_redis_client(url: str, cluster: bool = False) -> redis.Redis:
    """A client that fails fast with a clear error when the server is not there, refuses the credentials or the
    database, or is not a Redis server at all (the URL's password never appears in the error). With ``cluster``,
    a Redis Cluster client seeded from the node at ``url``: it has the same commands (typed as ``redis.Redis``
    here), routes each key to its master, and splits non-transactional pipelines by node."""
    try:
        client = (cast(redis.Redis, RedisCluster.from_url(url, decode_responses=True, socket_connect_timeout=3,
                                                          socket_timeout=30)) if cluster else
                  redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, socket_timeout=30))
        client.ping()
        if not cluster and _cluster_node(client):
            raise ConfigError(f"Redis at {redact(url)} is a node of a Redis Cluster: set INGEST_REDIS__CLUSTER=true "
                              "(the client then finds the other masters)")
    except RedisClusterException as e:
        raise ServiceUnavailableError(
            "Redis Cluster", url, f"{e}; check INGEST_REDIS__URL (a node of the cluster) and INGEST_REDIS__CLUSTER"
        ) from None
    except redis.AuthenticationError as e:
        raise ConfigError(f"Redis at {redact(url)} refused the credentials ({e}); check the user and password in "
                          "INGEST_REDIS__URL (redis://user:password@host:port/db)") from None
    except redis.ResponseError as e:
        raise ConfigError(f"Redis at {redact(url)} refused the connection: {e}; check INGEST_REDIS__URL (a database "
                          "number the server has: 0–15 unless it sets `databases`)") from None
    except (redis.ConnectionError, redis.TimeoutError) as e:
        if "connecting" not in str(e).lower() and "timeout" not in str(e).lower():  # it answered, not as Redis
            raise ServiceUnavailableError(
                "Redis", url, f"the server there does not speak Redis ({e}); check the port in INGEST_REDIS__URL"
            ) from None
        raise ServiceUnavailableError(
            "Redis", url, "start it (`ingest services start` for the embedded one) or set INGEST_REDIS__URL"
        ) from e
    except redis.RedisError as e:
        raise ServiceUnavailableError(
            "Redis", url, f"the server there does not answer as Redis does ({e}); check INGEST_REDIS__URL"
        ) from None
    return client


def _cluster_node(client: redis.Redis) -> bool:
    """Whether the server is a node of a Redis Cluster (False when INFO is not allowed: the keys then say so)."""
    try:
        return str(client.info("cluster").get("cluster_enabled", 0)) == "1"
    except redis.ResponseError:
        return False


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (its keys must then share a hash slot to meet in one
    transaction or script)."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import ClusterPipeline

    return isinstance(client, (RedisCluster, ClusterPipeline, AsyncRedisCluster))


def delete_namespace(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix:`` (a throwaway namespace: ``ingest cluster``, evaluations, tests)."""
    batch = list(client.scan_iter(f"{prefix}:*", count=1000))
    while batch:
        client.delete(*batch[:1000])
        batch = batch[1000:]


def load_script(name: str) -> str:
    """The text of one of the Lua scripts kept beside this module."""
    return resources.files("ingest.stores.redis").joinpath(name).read_text(encoding="utf-8")


class Keys:
    """Every Redis key name the pipeline uses, in one place."""

    def __init__(self, prefix: str, cluster: bool = False) -> None:
        self.prefix = prefix
        # The queue's four keys meet in transactions (an acknowledgement clears the delivery counts; a replay moves
        # an entry from one stream to the other): on a Redis Cluster they share the hash tag {queue}, one slot. A
        # single server keeps the names it always had.
        queue = f"{prefix}:{{queue}}" if cluster else prefix
        self.pending = f"{queue}:stream:pending"
        self.dead = f"{queue}:stream:dead"
        self.attempts = f"{queue}:attempts"
        self.last_failure = f"{queue}:lastfailure"
        self.stats = f"{prefix}:stats"
        self.feed_stats = f"{prefix}:feedstats"
        # Near-duplicate and story state (stories.lua names the keys under it; one hash tag, one slot). "v2":
        # records by day; the first layout's keys (records by number) are not read, they expire in a week.
        self.stories = f"{prefix}:{{stories}}:v2"
        # The state's identity, also kept in the search server (``ingest.reconcile``): one that is gone or differs
        # says Redis or the index lost what the other remembers.
        self.epoch = f"{prefix}:epoch"

    def stats_hour(self, at: datetime) -> str:
        return f"{self.prefix}:stats:hour:{at.astimezone(UTC):%Y%m%d%H}"

    def feed(self, feed_id: str) -> str:
        return f"{self.prefix}:feed:{{{feed_id}}}"

    def marks(self, generation: int, bucket: int) -> str:
        return f"{self.prefix}:seen:{generation}:{bucket}"

    def texts(self, generation: int, bucket: int) -> str:
        return f"{self.prefix}:text:{generation}:{bucket}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{{{name}}}"

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
