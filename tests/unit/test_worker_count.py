"""How many batch workers the process DAG maps: the whole stream drained by one run, the pool kept busy."""

from __future__ import annotations

import pytest

from ingest.airflow.tasks import worker_count


@pytest.mark.parametrize(("pending", "workers"), [
    (0, 0),  # nothing pending: nothing mapped, the run skips
    (1, 1),
    (30, 2),  # two batches: one worker each, not four for two batches
    (100, 4),  # twice the pool's two slots, so that one starts while the others run
    (2_000, 4),  # 80 batches: four workers of 20 batches drain them
    (2_001, 5),  # one more article: a fifth worker, not left for the next run
    (10_000, 20),
])
def test_a_run_maps_enough_workers_to_drain_the_stream(pending: int, workers: int) -> None:
    assert worker_count(pending, batch_size=25, max_batches=20, slots=2, most=256) == workers


def test_the_number_of_workers_is_capped() -> None:
    assert worker_count(1_000_000, batch_size=25, max_batches=20, slots=2, most=256) == 256
    assert worker_count(1_000, batch_size=25, max_batches=20, slots=8, most=6) == 6
