"""A Redis Cluster of three masters on loopback beside one server, whatever INGEST_TEST_REDIS says: the pipeline's
dedup and story assignment give the same answers on both, the queue's keys that meet in transactions share one
slot, and the state spreads over the masters. (`make test` also runs the Redis-backed tests on a cluster.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.embedded.services import free_port, spawn_redis, spawn_redis_cluster
from ingest.models import FeedEntry
from ingest.stores.redis import RedisPendingQueue, build_redis_client
from tests.conftest import redis_for, shared_fixtures
from tests.integration.test_cli import run


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(one server's URL, a cluster node's URL)``."""
    single_port, ports = free_port(), [free_port() for _ in range(3)]
    procs: list[subprocess.Popen[bytes]] = [spawn_redis(single_port, tmp_path_factory.mktemp("single"))]
    procs += spawn_redis_cluster(ports, tmp_path_factory.mktemp("cluster"))
    yield f"redis://127.0.0.1:{single_port}/0", f"redis://127.0.0.1:{ports[0]}/0"
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _articles(path: Path, pairs: int) -> str:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            if n == pairs:
                break
            pair = json.loads(line)
            rows += [{"id": f"{pair['pair_id']}-{k}", "text": pair[f"text{k}"], "lang": pair[f"lang{k}"]}
                     for k in (1, 2)]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_ingest_cluster_prints_the_same_on_a_cluster_as_on_one_server(both: tuple[str, str]) -> None:
    single, cluster = both
    articles = _articles(shared_fixtures() / "dedup" / "semeval2022_task8_dev.jsonl", 80)
    on_one = run(["cluster", "-"], env={"INGEST_REDIS__URL": single}, stdin=articles)
    on_cluster = run(["cluster", "-"], env={"INGEST_REDIS__URL": cluster, "INGEST_REDIS__CLUSTER": "true"},
                     stdin=articles)
    assert on_one.returncode == on_cluster.returncode == 0, on_cluster.stderr
    assert on_cluster.stdout == on_one.stdout
    kinds = {json.loads(line)["kind"] for line in on_one.stdout.splitlines()}
    assert {"new", "story"} <= kinds  # the answers compared are not all alike
    # its namespace is deleted afterwards on every master
    client = redis_for(cluster, True)
    assert not list(client.scan_iter("ingest:cluster:*"))
    # without INGEST_REDIS__CLUSTER a node would answer MOVED to most keys: one line says what to set
    moved = run(["cluster", "-"], env={"INGEST_REDIS__URL": cluster}, stdin=articles)
    assert moved.returncode == 2 and moved.stderr.strip().splitlines() == [
        f"ingest: error: Redis at {cluster} is a node of a Redis Cluster: set INGEST_REDIS__CLUSTER=true (the "
        "client then finds the other masters)"]


def test_the_queues_transactions_run_on_a_cluster_and_its_state_spreads(both: tuple[str, str]) -> None:
    _, cluster = both
    client = build_redis_client(cluster, cluster=True)
    queue = RedisPendingQueue(client, "spread", "workers", 0)
    assert queue.keys.pending == "spread:{queue}:stream:pending"  # one slot for the queue's four keys
    queue.enqueue([(f"a{i}", FeedEntry(feed_id="f", feed_name="F", url=f"https://example.org/{i}"))
                   for i in range(60)])
    taken = queue.read_batch("w1", 20)
    queue.ack([t.message_id for t in taken[:10]])  # MULTI over the stream and the delivery counts
    queue.dead_letter(taken[10], "http_4xx", "HTTP 404")
    assert queue.replay(reason="http_4xx") == 1  # MULTI over both streams
    assert queue.pending_count() == 60 - 10 - 1 + 1
    per_master = [int(node.dbsize()) for node in (redis_for(f"redis://127.0.0.1:{port}/0", False)
                                                  for port in _master_ports(cluster))]
    assert len(per_master) == 3 and all(per_master), per_master  # the articles' keys lie on every master


def _master_ports(node_url: str) -> list[int]:
    client = redis_for(node_url, True)
    return sorted(int(node.port) for node in client.get_primaries())  # type: ignore[attr-defined]
