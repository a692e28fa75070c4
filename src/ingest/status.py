"""The pipeline's state for operators, in one place: what ``ingest status`` and ``ingest feeds status`` print, what
the Airflow pipeline view shows and what the ``ingest_maintenance`` DAG reports. The feed-health rules are pure
(:func:`feed_rows`, :func:`summarise_feeds`); :func:`pipeline_status` and :func:`feed_health_rows` read Redis (the
stream, the counters, the feed states) and the feed registry, and write nothing but the consumer group, created
when missing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ingest.config import Settings
from ingest.dates import iso_utc
from ingest.feeds import load_feeds
from ingest.lights import (
    FRESHNESS_PREFIX,
    Component,
    DagInfo,
    dag_component,
    feeds_component,
    freshness_component,
    queue_component,
    redis_component,
    search_component,
    worst,
)
from ingest.models import FeedSource, FeedState, QueueHealth
from ingest.redact import redact

if TYPE_CHECKING:
    import redis

# The counters the hourly throughput shows, in the order of the flow.
THROUGHPUT = ("poll/queued", "index/indexed", "dedup/near_duplicate", "dedup/same_story", "process/dead_lettered")


@dataclass(frozen=True)
class HourCounts:
    """The THROUGHPUT counters of one hour, and its freshness buckets (``ingest.lights``)."""

    hour: datetime
    counts: dict[str, int]
    freshness: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineStatus:
    """The pipeline at one moment: the stream (``queue``), the totals of all runs (``counts``), the THROUGHPUT
    counters of the last hours, oldest first (``hourly``), and the feeds (``feeds``: :func:`summarise_feeds`)."""

    at: datetime
    queue: QueueHealth
    counts: dict[str, int]
    hourly: list[HourCounts]
    feeds: dict[str, Any]
    # None when Redis and the index hold the same state id; else what was lost and the way back (ingest.reconcile)
    state_problem: str | None = None
    state_lost: bool = False  # the problem is a lost state (not a search server that does not answer)
    redis_at: str = ""  # where Redis and the search server were read (secrets hidden)
    search_at: str = ""
    dags: tuple[DagInfo, ...] = ()  # what Airflow said of the DAGs, where it was asked (the pipeline view)

    @property
    def health(self) -> list[Component]:
        """The health lines (``ingest.lights``): Redis, the search server, the queue, the feeds, freshness,
        then each DAG Airflow was asked about."""
        q = self.queue
        before = self.hourly[-2].counts if len(self.hourly) > 1 else {}
        lines = [
            redis_component(self.redis_at, None),
            search_component(self.search_at, self.state_problem, self.state_lost),
            queue_component(pending=q.pending, stale=q.stale, oldest_stale_seconds=q.oldest_stale_seconds,
                            dead_letters=q.dead_letters, indexed_this_hour=self.last_hour.get("index/indexed", 0),
                            indexed_last_hour=before.get("index/indexed", 0)),
            feeds_component(self.feeds["by_state"]),
            freshness_component(self.hourly[-1].freshness if self.hourly else {},
                                self.hourly[-2].freshness if len(self.hourly) > 1 else {}),
        ]
        return lines + [dag_component(d, self.at) for d in self.dags]

    @property
    def last_hour(self) -> dict[str, int]:
        """The THROUGHPUT counters of the current hour."""
        return self.hourly[-1].counts if self.hourly else {}

    @property
    def last_day(self) -> dict[str, int]:
        """The THROUGHPUT counters summed over the hours read."""
        return {k: sum(h.counts[k] for h in self.hourly) for k in THROUGHPUT}

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``ingest status --json`` and the pipeline view's ``status.json`` (``pending`` and
        ``dead_letters`` at the top too, as they always were)."""
        return {
            "at": iso_utc(self.at),
            "pending": self.queue.pending,
            "dead_letters": self.queue.dead_letters,
            "queue": vars(self.queue),
            "counts": self.counts,
            "hourly": [{"hour": iso_utc(h.hour), "counts": h.counts, "freshness": h.freshness} for h in self.hourly],
            "last_hour": self.last_hour,
            "last_day": self.last_day,
            "feeds": self.feeds,
            "state_problem": self.state_problem,
            "state_lost": self.state_lost,
            "light": worst(self.health),
            "health": [vars(c) for c in self.health],
        }


def feed_health_rows(client: redis.Redis, settings: Settings, feeds: Sequence[FeedSource]) -> list[dict[str, Any]]:
    """:func:`feed_rows` of ``feeds`` from the states and per-feed counters kept in Redis."""
    from ingest.stores.redis import RedisFeedStateStore, RedisStats

    states = RedisFeedStateStore(client, settings.redis.prefix)
    return feed_rows(feeds, {f.id: states.get(f.id) for f in feeds},
                     RedisStats(client, settings.redis.prefix).read_feeds())


def pipeline_status(settings: Settings, now: datetime, hours: int = 24, dags: Sequence[DagInfo] = ()
                    ) -> PipelineStatus:
    """The pipeline's state read from Redis and the feed registry, with the counters of the last ``hours``
    (and ``dags``, what Airflow said of the DAGs, for the health lines)."""
    from ingest.stores.redis import RedisPendingQueue, RedisStats, connect_redis

    client = connect_redis(settings.redis)
    try:
        health = RedisPendingQueue.for_settings(client, settings).health()
        stats = RedisStats(client, settings.redis.prefix)
        hourly = stats.hourly(now, hours)
        feeds = load_feeds(settings.feeds.path) if settings.feeds.path.exists() else []
        rows = feed_health_rows(client, settings, feeds)
        counts = stats.read()
        problem, lost = state_problem(client, settings)
    finally:
        client.close()
    series = [HourCounts(start, {k: c.get(k, 0) for k in THROUGHPUT},
                         {k: v for k, v in c.items() if k.startswith(FRESHNESS_PREFIX)}) for start, c in hourly]
    return PipelineStatus(at=now, queue=health, counts=counts, hourly=series, feeds=summarise_feeds(rows),
                          state_problem=problem, state_lost=lost, redis_at=redact(settings.redis.url),
                          search_at=_search_at(settings), dags=tuple(dags))


def health_without_redis(settings: Settings, error: str, dags: Sequence[DagInfo], now: datetime
                         ) -> list[Component]:
    """The health lines when Redis does not answer (``error``): Redis red, whether the search server answers,
    and the DAGs."""
    from ingest.stores.elasticsearch import build_es_client

    es = build_es_client(settings.elasticsearch)
    try:
        es.info()
        search = search_component(_search_at(settings), None, False)
    except Exception as e:
        search = search_component(_search_at(settings), _no_answer(settings, e), False)
    finally:
        es.close()
    return [redis_component(redact(settings.redis.url), error), search, *(dag_component(d, now) for d in dags)]


def _search_at(settings: Settings) -> str:
    return redact(", ".join(settings.elasticsearch.hosts))


def _no_answer(settings: Settings, error: Exception) -> str:
    text = " ".join(str(error).split())
    # the client wraps the socket's error in two layers of "Connection error caused by": say the socket's words
    found = re.search(r"\[Errno -?\d+\] [^)'\"]+", text) or re.search(r"(?:timed out|Read timeout)[^)'\"]*", text)
    reason = (found.group(0) if found else text[:160]) or type(error).__name__
    return redact(f"the search server does not answer at {_search_at(settings)} ({reason}); check "
                  "INGEST_ELASTICSEARCH__HOSTS and that it runs")


def state_problem(client: redis.Redis, settings: Settings) -> tuple[str | None, bool]:
    """What :func:`ingest.reconcile.check_state` would stop the work for (and True), or None; a search server that
    does not answer is said so (the state cannot be compared: False). Writes nothing."""
    from ingest.errors import StateLostError
    from ingest.reconcile import check_state
    from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client
    from ingest.stores.redis import RedisEpoch

    es = build_es_client(settings.elasticsearch)
    try:
        check_state(RedisEpoch(client, settings.redis.prefix), ElasticsearchSink(es, settings.elasticsearch),
                    settings.redis.prefix, settings.redis.url, create=False)
    except StateLostError as e:
        return str(e), True
    except Exception as e:
        return _no_answer(settings, e) + "; Redis' state cannot be compared with the index", False
    finally:
        es.close()
    return None, False


# ------------------------------------------------------------------ feed health (pure)


FeedHealthState = Literal["ok", "failing", "dead", "disabled", "never polled"]


def feed_state(feed: FeedSource, state: FeedState) -> FeedHealthState:
    """``disabled`` by the registry, ``dead`` (disabled by the poll after too many failures), ``failing``
    (its last poll failed), ``ok``, or ``never polled``."""
    if not feed.enabled:
        return "disabled"
    if state.disabled:
        return "dead"
    if state.consecutive_failures:
        return "failing"
    return "ok" if state.last_success_at else "never polled"


def feed_rows(
    feeds: Sequence[FeedSource], states: Mapping[str, FeedState], per_feed: Mapping[str, int]
) -> list[dict[str, Any]]:
    """One JSON-able row per feed: its health, schedule and what it brought (``per_feed``: the per-feed
    counters, ``<feed id>/<stage>/<outcome>`` → number)."""
    rows: list[dict[str, Any]] = []
    for feed in feeds:
        state = states[feed.id]
        rows.append({
            "id": feed.id,
            "enabled": feed.enabled and not state.disabled,
            "state": feed_state(feed, state),
            "last_success_at": _iso(state.last_success_at),
            "last_error": state.last_error,
            "consecutive_failures": state.consecutive_failures,
            "failing_since": _iso(state.failing_since),
            "next_poll_at": _iso(state.next_poll_at),
            "interval_minutes": state.interval_minutes,
            "entries_per_day": state.entries_per_day,
            "hint_minutes": state.hint_minutes,
            "entries_queued": per_feed.get(f"{feed.id}/poll/queued", 0),
            "articles_indexed": per_feed.get(f"{feed.id}/index/indexed", 0),
        })
    return rows


def summarise_feeds(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Feeds counted by state, and the ones an operator should look at (failing or dead), worst first."""
    trouble = sorted(
        (r for r in rows if r["state"] in ("failing", "dead")),
        key=lambda r: (r["state"] != "dead", -int(r["consecutive_failures"]), r["id"]),
    )
    return {
        "feeds": len(rows),
        "by_state": dict(sorted(Counter(str(r["state"]) for r in rows).items())),
        "attention": [
            {k: r[k] for k in ("id", "state", "consecutive_failures", "failing_since", "last_error")} for r in trouble
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
