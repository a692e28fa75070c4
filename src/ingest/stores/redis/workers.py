"""Workers' leases: a key per worker (its consumer name) that lives ``lease_seconds`` after its last beat. What a
worker holds (URL claims, stream entries) is another worker's to take once its lease is gone: a worker killed
with SIGKILL, by the OOM killer or with its node holds nothing for longer than its lease."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from ingest.stores.redis.keys import Keys


class RedisWorkers:
    def __init__(self, client: redis.Redis, prefix: str, lease_seconds: float) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.lease_ms = max(1, int(lease_seconds * 1000))

    def beat(self, worker: str) -> None:
        """``worker`` is alive for another lease."""
        self.client.set(self.keys.worker(worker), "1", px=self.lease_ms)

    def gone(self, worker: str) -> None:
        """``worker`` stopped: what it still holds may be taken at once."""
        self.client.delete(self.keys.worker(worker))

    def alive(self, workers: Sequence[str]) -> set[str]:
        """The workers among ``workers`` whose lease runs."""
        pipe = self.client.pipeline(transaction=False)
        for worker in workers:
            pipe.exists(self.keys.worker(worker))
        return {worker for worker, found in zip(workers, pipe.execute(), strict=True) if found}
