"""Health at a glance, the rules in one place (pure): one line per component — Redis, the search server, the queue,
the feeds, freshness and, where Airflow is at hand, each DAG — each green, amber or red with its reason and the
next step. ``ingest status`` prints the lines, the Airflow pipeline view shows them first.

Freshness is kept like the counters: for every article indexed, the time from publication, from entering the queue
and from its fetch to the moment its document landed falls in one of :data:`BOUNDS` (seconds); the worker adds the
bucket counts to the hour's counters, and :func:`percentile` reads p50 and p95 back from them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Light = Literal["green", "amber", "red"]
_RANK: dict[Light, int] = {"green": 0, "amber": 1, "red": 2}

# Upper bounds of the latency buckets, in seconds; the last one holds everything above a week.
BOUNDS: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 2 * 3600, 6 * 3600, 12 * 3600,
                             86400, 2 * 86400, 7 * 86400, math.inf)
# What the latencies are measured from, to the moment the document landed in the index.
FRESHNESS = ("published", "queued", "fetched")
FRESHNESS_PREFIX = "freshness/"
# A scheduled DAG whose next run is this late is said to be overdue: the scheduler is down or saturated.
OVERDUE = timedelta(minutes=10)


@dataclass(frozen=True)
class Component:
    """One line of the health summary: what (``name``), how it is (``light``), why and what to do (``summary``)
    and, where there is one, a link to look further (relative to the Airflow UI's base URL, or Kibana's)."""

    name: str
    light: Light
    summary: str
    link: str | None = None


def worst(components: Sequence[Component]) -> Light:
    """The overall light: the worst of the components' (green with none)."""
    return max((c.light for c in components), key=_RANK.__getitem__, default="green")


# ------------------------------------------------------------------ freshness


def bucket(seconds: float) -> str:
    """The counter name of the bucket ``seconds`` falls in (a negative latency, a clock ahead, counts as 0)."""
    for bound in BOUNDS:
        if seconds <= bound:
            return _label(bound)
    return _label(math.inf)


def latency_counts(kind: str, seconds: float) -> str:
    """The hourly counter one article adds for the latency ``kind`` (one of FRESHNESS)."""
    return f"{FRESHNESS_PREFIX}{kind}/{bucket(seconds)}"


def percentile(counts: Mapping[str, int], kind: str, q: float) -> float | None:
    """The upper bound (seconds) of the bucket holding the ``q`` quantile of ``kind``'s latencies in ``counts``
    (hourly counters, any other names ignored), or None when nothing was measured."""
    per_bound: Counter[float] = Counter()
    prefix = f"{FRESHNESS_PREFIX}{kind}/"
    for name, n in counts.items():
        if name.startswith(prefix):
            per_bound[_bound(name[len(prefix):])] += n
    total = sum(per_bound.values())
    if total <= 0:
        return None
    seen = 0
    for bound in sorted(per_bound):
        seen += per_bound[bound]
        if seen >= q * total:
            return bound
    return math.inf  # pragma: no cover - the loop always reaches the total


def measured(counts: Mapping[str, int], kind: str) -> int:
    """How many articles ``kind``'s latencies were measured on in ``counts``."""
    prefix = f"{FRESHNESS_PREFIX}{kind}/"
    return sum(n for name, n in counts.items() if name.startswith(prefix))


def say_within(seconds: float | None) -> str:
    """A bucket bound for people: "≤ 5 min", "> 7 d", "–" when nothing was measured."""
    if seconds is None:
        return "–"
    if math.isinf(seconds):
        return "> 7 d"
    return f"≤ {say_duration(seconds)}"


def say_duration(seconds: float) -> str:
    """``seconds`` in the largest whole unit that fits: "45 s", "12 min", "3 h", "2 d"."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _label(bound: float) -> str:
    return "inf" if math.isinf(bound) else f"{bound:g}"


def _bound(label: str) -> float:
    try:
        return float(label)
    except ValueError:
        return math.inf


# ------------------------------------------------------------------ the components' rules


def redis_component(where: str, error: str | None) -> Component:
    if error:
        return Component("Redis", "red", f"{error}")
    return Component("Redis", "green", f"answers at {where}")


def search_component(where: str, problem: str | None, lost: bool) -> Component:
    """The search server: red when it does not answer or when it and Redis no longer hold the same state."""
    if problem:
        return Component("search server", "red", problem)
    return Component("search server", "green", f"answers at {where}; Redis and the index hold the same state")


def queue_component(*, pending: int, stale: int, oldest_stale_seconds: float, dead_letters: int,
                    indexed_this_hour: int, indexed_last_hour: int) -> Component:
    """The stream: amber when entries wait and nothing was indexed this hour or the last (no worker runs, or
    every batch fails), when delivered entries are stale, or when there are dead letters."""
    said = [f"{pending:,} waiting", f"{indexed_this_hour:,} indexed this hour"]
    light: Light = "green"
    if pending and not (indexed_this_hour or indexed_last_hour):
        light = "amber"
        said.append("nothing indexed for an hour while entries wait: is the process DAG running "
                    "(or `ingest process`)?")
    if stale:
        light = "amber"
        said.append(f"{stale:,} delivered but unacknowledged for {say_duration(oldest_stale_seconds)}: "
                    "the next batch reclaims them")
    if dead_letters:
        light = "amber"
        said.append(f"{dead_letters:,} dead letter(s): `ingest dlq list`, then `ingest dlq replay`")
    return Component("queue", light, "; ".join(said))


def feeds_component(by_state: Mapping[str, int]) -> Component:
    """The registry: red when every enabled feed fails, amber when some do or none was polled yet."""
    enabled = sum(n for state, n in by_state.items() if state != "disabled")
    troubled = by_state.get("failing", 0) + by_state.get("dead", 0)
    counted = ", ".join(f"{n:,} {state}" for state, n in sorted(by_state.items())) or "none in the registry"
    if enabled and troubled == enabled:
        return Component("feeds", "red", f"every feed fails ({counted}): see the failing feeds below")
    if troubled:
        return Component("feeds", "amber", f"{counted}: see the failing feeds below")
    if enabled and by_state.get("never polled", 0) == enabled:
        return Component("feeds", "amber", f"{counted}: no feed was polled yet; is the poll DAG running?")
    return Component("feeds", "green" if enabled else "amber", counted)


def freshness_component(this_hour: Mapping[str, int], last_hour: Mapping[str, int]) -> Component:
    """Freshness of what was indexed this hour (else the hour before): p50/p95 from publication, from entering
    the queue; informative only (green), as a publisher's dates say as much as the pipeline does."""
    counts = this_hour if measured(this_hour, "queued") else last_hour
    if not measured(counts, "queued"):
        return Component("freshness", "green", "nothing indexed this hour or the last")
    parts = [f"{label} p50 {say_within(percentile(counts, kind, 0.5))}, "
             f"p95 {say_within(percentile(counts, kind, 0.95))}"
             for kind, label in (("published", "published → indexed"), ("queued", "queued → indexed"))]
    return Component("freshness", "green", "; ".join(parts))


@dataclass(frozen=True)
class DagInfo:
    """What Airflow knows of one DAG (read from its metadata database by ``ingest.airflow.dag_health``)."""

    dag_id: str
    found: bool = True
    paused: bool = False
    import_errors: bool = False
    scheduled: bool = True  # on a time schedule (else triggered by asset events)
    last_state: str | None = None  # the latest run's state
    last_at: datetime | None = None  # the latest run's end, else its start
    next_at: datetime | None = None  # when the scheduler creates the next run (time schedules)


def dag_component(dag: DagInfo, now: datetime) -> Component:
    """A DAG: red when missing, broken, paused or its latest run failed; amber when overdue or never run."""
    link = f"dags/{dag.dag_id}"
    name = f"DAG {dag.dag_id}"
    if not dag.found:
        return Component(name, "red", "not in Airflow: is dags/ in the DAGs folder and the dag-processor running?")
    if dag.import_errors:
        return Component(name, "red", "fails to import: see the DAG's import errors in Airflow", link)
    if dag.paused:
        return Component(name, "red", "paused: nothing runs; unpause it in the DAG list "
                         f"(`airflow dags unpause {dag.dag_id}`)", link)
    said = [f"last run {dag.last_state} {say_duration((now - dag.last_at).total_seconds())} ago"
            if dag.last_state and dag.last_at else "never run"]
    if dag.next_at is not None:
        late = now - dag.next_at
        said.append(f"next run overdue by {say_duration(late.total_seconds())}: is the scheduler running?"
                    if late > OVERDUE else
                    f"next run in {say_duration(max(0.0, -late.total_seconds()))}" if late <= timedelta(0) else
                    "next run due now")
    elif not dag.scheduled:
        said.append("runs when the poll queues new entries")
    summary = "; ".join(said)
    if dag.last_state == "failed":
        return Component(name, "red", summary, link)
    if dag.next_at is not None and now - dag.next_at > OVERDUE:
        return Component(name, "amber", summary, link)
    if not dag.last_state and dag.scheduled:
        return Component(name, "amber", summary, link)
    return Component(name, "green", summary, link)
