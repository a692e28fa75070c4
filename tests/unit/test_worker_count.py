"""How many batch workers the process DAG maps: the whole stream drained by one run, the pool kept busy."""

from __future__ import annotations

import pytest

from ingest.airflow.tasks import worker_count


@pytest.mark.parametrize(("pending", "workers"), [
    (0, 0),  # nothing pending: nothing mapped, the run skips
    (1, 1),  # one batch: one worker, not one per slot
    (30, 2),  # two batches: one worker each
    (100, 2),  # four batches: one worker per slot; both drain the one stream until it is empty
    (2_000, 2),  # 80 batches: two workers of 40 batches drain them
    (2_001, 3),  # one more article: a third worker, not left for the next run
    (10_000, 10),
])
def test_a_run_maps_enough_workers_to_drain_the_stream(pending: int, workers: int) -> None:
    assert worker_count(pending, batch_size=25, max_batches=40, slots=2, most=256) == workers


def test_every_slot_gets_a_worker_when_there_are_batches_enough() -> None:
    assert worker_count(1_000, batch_size=25, max_batches=40, slots=8, most=256) == 8
    assert worker_count(100, batch_size=25, max_batches=40, slots=8, most=256) == 4


def test_the_number_of_workers_is_capped() -> None:
    assert worker_count(1_000_000, batch_size=25, max_batches=40, slots=2, most=256) == 256
    assert worker_count(1_000, batch_size=25, max_batches=40, slots=8, most=6) == 6
