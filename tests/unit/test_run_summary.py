"""What a run reports: the indexed_at range of the documents it wrote, summed over workers for the asset event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.airflow.tasks import summarise_process
from ingest.dates import iso_utc
from ingest.report import Report

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_a_report_keeps_the_range_of_indexed_at_across_batches_and_merges() -> None:
    quiet = Report()
    assert "indexed_at_first" not in quiet.as_dict()  # wrote nothing: no range
    first, second = Report(), Report()
    first.wrote_at(T0 + timedelta(seconds=5))
    first.wrote_at(T0)
    second.wrote_at(T0 + timedelta(seconds=9, microseconds=1))
    quiet.merge(first)
    quiet.merge(second)
    assert (quiet.indexed_at_first, quiet.indexed_at_last) == (T0, T0 + timedelta(seconds=9, microseconds=1))
    assert quiet.as_dict()["indexed_at_first"] == "2026-11-24T09:30:00.000000Z"  # six decimals, even for .0


def test_iso_strings_compare_as_the_times_do() -> None:
    times = [T0 + timedelta(microseconds=m) for m in (0, 1, 999_999, 1_000_000)]
    assert sorted(iso_utc(t) for t in reversed(times)) == [iso_utc(t) for t in times]


def test_the_run_summary_spans_its_workers_and_names_index_and_schema() -> None:
    workers = [
        {"indexed": 2, "dead_lettered": 0, "counts": {"index/indexed": 2}, "errors": [], "index": "news",
         "schema_version": 1, "indexed_at_first": iso_utc(T0 + timedelta(seconds=3)),
         "indexed_at_last": iso_utc(T0 + timedelta(seconds=7))},
        {"indexed": 0, "dead_lettered": 1, "counts": {"process/dead_lettered": 1}, "errors": ["x"], "index": "news",
         "schema_version": 1},
        {"indexed": 1, "dead_lettered": 0, "counts": {"index/indexed": 1}, "errors": [], "index": "news",
         "schema_version": 1, "indexed_at_first": iso_utc(T0), "indexed_at_last": iso_utc(T0)},
    ]
    summary = summarise_process(workers)
    assert summary == {
        "indexed": 3, "dead_lettered": 1, "workers": 3, "errors": 1,
        "counts": {"index/indexed": 3, "process/dead_lettered": 1},
        "index": "news", "schema_version": 1,
        "indexed_at_first": iso_utc(T0), "indexed_at_last": iso_utc(T0 + timedelta(seconds=7)),
    }
