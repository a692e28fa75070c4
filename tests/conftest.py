"""Real services for the tests: a redis-server, the osmem search server and the fixture HTTP server, all on
loopback and started once per session. Set INGEST_TEST_ELASTICSEARCH_URL to run against a real
Elasticsearch instead of osmem (INGEST_TEST_ELASTICSEARCH_MODE=stack|serverless, default stack)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from ingest.config import ElasticsearchSettings, Settings, load_settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.embedded.services import DEMO_ROOT, free_port, spawn_redis, spawn_redis_cluster, spawn_search
from ingest.feeds import parse_feeds
from ingest.models import FeedSource
from ingest.stores.redis import delete_namespace

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
SHARED = TESTS.parent.parent / "shared"


def shared_fixtures() -> Path:
    """``../shared/fixtures``, or a loud failure: tests that need it must not pass silently without it."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.fail(f"../shared/fixtures not found at {path}; clone the project next to shared/")
    return path


@pytest.fixture(scope="session")
def redis_cluster() -> bool:
    """Whether the tests' Redis is a 3-master Redis Cluster (INGEST_TEST_REDIS=cluster; `make test` runs the
    Redis-backed tests both ways) rather than one server."""
    mode = os.environ.get("INGEST_TEST_REDIS", "single")
    if mode not in ("single", "cluster"):
        pytest.fail(f"INGEST_TEST_REDIS={mode!r}: expected single or cluster")
    return mode == "cluster"


@pytest.fixture(scope="session")
def redis_url(redis_cluster: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A node of the tests' Redis (a cluster client finds the other masters from it)."""
    if redis_cluster:
        ports = [free_port() for _ in range(3)]
        procs = spawn_redis_cluster(ports, tmp_path_factory.mktemp("redis-cluster"))
    else:
        ports = [free_port()]
        procs = [spawn_redis(ports[0], tmp_path_factory.mktemp("redis"))]
    yield f"redis://127.0.0.1:{ports[0]}/0"
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def redis_for(redis_url: str, redis_cluster: bool, decode: bool = True) -> redis.Redis:
    """A client of the tests' Redis, a cluster client on a cluster (``decode=False``: values as bytes)."""
    if redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(redis_url, decode_responses=decode)  # type: ignore[return-value]
    return redis.Redis.from_url(redis_url, decode_responses=decode)


@pytest.fixture(scope="session")
def search_server() -> Iterator[tuple[str, str]]:
    """``(url, server_mode)`` of the search server the tests use."""
    external = os.environ.get("INGEST_TEST_ELASTICSEARCH_URL")
    if external:
        yield external, os.environ.get("INGEST_TEST_ELASTICSEARCH_MODE", "stack")
        return
    port = free_port()
    proc = spawn_search(port)
    yield f"http://127.0.0.1:{port}", "serverless"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def search_url(search_server: tuple[str, str]) -> str:
    return search_server[0]


@pytest.fixture(scope="session")
def fixture_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureServer]:
    """Serves the demo's feeds and pages plus the tests' own files (tests/data/site) from one root."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(DEMO_ROOT, site, dirs_exist_ok=True)
    if (DATA / "site").is_dir():
        shutil.copytree(DATA / "site", site, dirs_exist_ok=True)
    server = FixtureServer(site)
    server.start_in_thread()
    yield server
    server.shutdown()


def demo_feeds(base_url: str) -> list[FeedSource]:
    """The demo's feed registry, pointed at a fixture server's address."""
    text = (DEMO_ROOT / "feeds.yaml").read_text(encoding="utf-8").replace("http://127.0.0.1:8765", base_url)
    return parse_feeds(yaml.safe_load(text), "demo feeds.yaml")


@pytest.fixture
def feed_base_url(fixture_server: FixtureServer) -> str:
    return fixture_server.base_url


@pytest.fixture
def es_settings(search_server: tuple[str, str]) -> ElasticsearchSettings:
    """The search server with an index (alias) of this test's own."""
    url, mode = search_server
    return ElasticsearchSettings(hosts=[url], server_mode=mode, index_prefix=f"news-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(redis_url: str, redis_cluster: bool, es_settings: ElasticsearchSettings, tmp_path: Path) -> Settings:
    """Settings for one test: its own Redis key prefix and its own index, so tests never see each other."""
    return load_settings(
        redis={"url": redis_url, "prefix": f"t{uuid.uuid4().hex[:8]}", "cluster": redis_cluster},
        elasticsearch=es_settings.model_dump(),
        # Every fixture "site" is the one loopback server: no spacing between requests unless a test asks.
        http={"allow_private": True, "timeout": 5.0, "connect_timeout": 2.0, "host_min_interval_seconds": 0.0,
              "host_max_concurrent": 8},
        pipeline={"reclaim_idle_seconds": 3600, "min_text_chars": 200},
        embedded={"state_dir": tmp_path / "state"},
    )


@pytest.fixture
def redis_client(redis_url: str, redis_cluster: bool) -> Iterator[redis.Redis]:
    client = redis_for(redis_url, redis_cluster)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key prefix of one test's own, deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    delete_namespace(redis_client, name)


@pytest.fixture(scope="module")
def seed_text() -> str:
    """The sample French article's text."""
    return (shared_fixtures() / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
