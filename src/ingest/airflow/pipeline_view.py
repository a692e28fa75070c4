"""The pipeline view operators open from the Airflow UI: queue depth, throughput per hour, outcomes and the
feeds that need attention (``ingest.status.pipeline_status``, rendered; no logic of its own).

A FastAPI app the plugin mounts under ``/ingest`` on Airflow's API server: ``/ingest/`` is the page (embedded in
the UI as the "Pipeline" view), ``/ingest/status.json`` the same data as JSON. Each request reads the settings
and Redis afresh; the page reloads itself every 30 seconds. Plugin apps are not behind Airflow's login by
themselves: both routes ask Airflow's auth manager, as the UI's own pages do, for a user allowed the
"cluster activity" view (the UI's session cookie, or a bearer token).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from ingest.config import resolve_settings
from ingest.dates import iso_utc
from ingest.errors import IngestError
from ingest.lights import FRESHNESS, Component, DagInfo, Light, measured, percentile, say_within, worst
from ingest.search_index.kibana import discover_url

if TYPE_CHECKING:
    from ingest.status import HourCounts, PipelineStatus

logger = logging.getLogger(__name__)

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:16px;color:#1a202c}h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:20px 0 6px}table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;
border-bottom:1px solid #e2e8f0;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#718096}.warn{color:#c53030}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:120px}.card b{display:block;font-size:22px}
.light{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:4px;vertical-align:-1px}
.green{background:#38a169}.amber{background:#d69e2e}.red{background:#e53e3e}
.badge{color:#fff;border-radius:4px;padding:1px 8px;font-size:13px;vertical-align:3px}
#health td:first-child{white-space:nowrap;font-weight:600}svg text{font:11px system-ui,sans-serif;fill:#4a5568}
"""
LIGHT_WORDS = {"green": "healthy", "amber": "needs a look", "red": "broken"}


def create_app() -> FastAPI:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    app = FastAPI(title="ingest pipeline view", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(requires_access_view(AccessView.CLUSTER_ACTIVITY))])

    @app.get("/status.json")
    def status_json() -> JSONResponse:
        status, down = _status()
        if status is None:
            return JSONResponse({"error": down.error, "light": worst(down.health),
                                 "health": [vars(c) for c in down.health]}, status_code=503)
        return JSONResponse(status.as_dict())

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        status, down = _status()
        if status is None:
            return HTMLResponse(_document(render_down(down)), status_code=503)
        return HTMLResponse(_document(render(status, _kibana())))

    return app


@dataclass(frozen=True)
class Down:
    """Redis does not answer (or the settings are wrong): the one-line reason and what still can be said."""

    error: str
    at: datetime
    health: list[Component]


def _status() -> tuple[PipelineStatus | None, Down]:
    """The status with the settings of this request, or None and why (with the health lines still known)."""
    from ingest.status import health_without_redis, pipeline_status

    now = datetime.now(UTC)
    dags = _dags()
    try:
        settings = resolve_settings()
    except IngestError as e:  # a broken setting: say so on the page, not a stack trace
        return None, Down(str(e), now, [Component("settings", "red", str(e))])
    try:
        return pipeline_status(settings, now, dags=dags), Down("", now, [])
    except IngestError as e:  # Redis down, a broken registry
        return None, Down(str(e), now, health_without_redis(settings, str(e), dags, now))


def _dags() -> list[DagInfo]:
    """What Airflow's database says of the DAGs; nothing when it cannot be read (the page says the rest)."""
    from ingest.airflow.dag_health import read_dags

    try:
        return read_dags()
    except Exception:  # the view must not fail with the metadata database: the DAG lines are left out
        logger.warning("the pipeline view could not read the DAGs from Airflow's database", exc_info=True)
        return []


def _kibana() -> tuple[str, str]:
    from ingest.airflow.declared import declared_settings

    kibana = declared_settings().kibana
    return kibana.url, kibana.space


def render(status: PipelineStatus, kibana: tuple[str, str] = ("http://127.0.0.1:5601", "default")) -> str:
    """The page's body for a :func:`~ingest.status.pipeline_status` result (HTML, every value escaped): the health
    lines first, then what needs attention (dead letters, failing feeds), the queue, articles per hour as a chart,
    freshness per hour, throughput and the totals."""
    q, feeds = status.queue, status.feeds
    health = status.health
    kibana_url, space = kibana
    parts = [
        _heading(worst(health), status.at),
        # a lost state stops the work: said first, in red (a search server that does not answer is its health line)
        f'<p class="warn" id="state">{escape(status.state_problem or "")}</p>' if status.state_lost else "",
        _health_table(health),
    ]
    if q.dead_by_reason:
        parts.append('<h2 id="dead">Dead letters by reason</h2>' + _table(
            ["reason", "entries"], [[escape(k), v] for k, v in q.dead_by_reason.items()]) +
            '<p class="muted">see them: <code>ingest dlq list</code>; replay: trigger ingest_maintenance with '
            '{"replay_reason": "…"}, or <code>ingest dlq replay --reason …</code></p>')
    if feeds["attention"]:
        parts.append('<h2 id="failing">Failing feeds</h2>' + _table(
            ["feed", "state", "failures", "failing since", "last error", ""], [
                [escape(f["id"]), f'<span class="warn">{escape(f["state"])}</span>', f["consecutive_failures"],
                 escape(f["failing_since"] or ""), escape(f["last_error"] or ""),
                 _link(discover_url(kibana_url, space, f'source.feed_id:"{f["id"]}"', "now-30d"),
                       "its articles in Kibana")]
                for f in feeds["attention"]]))
    cards = [
        ("waiting", q.pending, ""),
        ("never read", q.unread, ""),
        ("stale", q.stale, "warn" if q.stale else ""),
        ("dead letters", q.dead_letters, "warn" if q.dead_letters else ""),
        ("indexed this hour", status.last_hour.get("index/indexed", 0), ""),
        ("indexed in 24 h", status.last_day.get("index/indexed", 0), ""),
    ]
    parts.append('<h2>Queue</h2><div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{value}</b>{escape(label)}</div>' for label, value, cls in cards) + "</div>")
    parts.append("<h2>Articles indexed per hour, last 24 hours (UTC)</h2>" + chart(status.hourly)
                 + '<div class="muted">' + _link(discover_url(kibana_url, space), "the last 24 hours in Kibana")
                 + " · " + _link("dags/ingest_process_articles/runs", "process runs in Airflow") + "</div>")
    parts.append(_freshness_table(status.hourly))
    active = [h for h in reversed(status.hourly) if any(h.counts.values())]
    names = list(status.last_day)
    parts.append("<h2>Throughput, newest hour first (UTC)</h2>" + (
        _table(["hour", *names], [[escape(iso_utc(h.hour)[:16].replace("T", " "))] + [h.counts[k] for k in names]
                                  for h in active])
        if active else '<p class="muted">nothing counted in the last 24 hours</p>'))
    parts.append(f"<h2>Feeds ({feeds['feeds']})</h2>" + (" · ".join(
        f"{escape(k)} {v}" for k, v in feeds["by_state"].items()) or '<span class="muted">none in the registry</span>'))
    parts.append("<details><summary><b>Outcomes, all runs</b></summary>" + _table(
        ["counter", "count"], [[escape(k), v] for k, v in sorted(status.counts.items())]) + "</details>")
    return "\n".join(parts)


def render_down(down: Down) -> str:
    """The page when Redis does not answer: the health lines that can still be known, the reason first."""
    return "\n".join([_heading("red", down.at), f'<p class="warn" id="state">{escape(down.error)}</p>',
                      _health_table(down.health)])


def chart(hourly: Sequence[HourCounts], width: int = 720, height: int = 140) -> str:
    """Articles indexed per hour as an inline SVG bar chart, oldest hour left, the current hour right."""
    values = [h.counts.get("index/indexed", 0) for h in hourly]
    peak = max(values, default=0)
    top, bottom, left = 14, 18, 4
    step = (width - left) / max(len(values), 1)
    bars = []
    for n, (h, value) in enumerate(zip(hourly, values, strict=True)):
        tall = 0.0 if not peak else (height - top - bottom) * value / peak
        x, y = left + n * step, height - bottom - tall
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(step - 3, 1):.1f}" height="{tall:.1f}" '
                    f'fill="#3182ce"><title>{escape(iso_utc(h.hour)[11:16])} UTC: {value:,} indexed</title></rect>')
    labels = []
    if hourly:
        labels.append(f'<text x="{left}" y="{height - 4}">{escape(iso_utc(hourly[0].hour)[11:16])}</text>')
        labels.append(f'<text x="{width}" y="{height - 4}" text-anchor="end">now</text>')
    labels.append(f'<text x="{left}" y="10">peak {peak:,} per hour</text>')
    return (f'<svg id="chart" role="img" aria-label="articles indexed per hour" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
            f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#cbd5e0"/>'
            + "".join(bars) + "".join(labels) + "</svg>")


def _heading(light: Light, at: datetime) -> str:
    return (f'<h1>Ingest pipeline <span class="badge {light}" id="overall">{LIGHT_WORDS[light]}</span></h1>'
            f'<div class="muted">at {escape(iso_utc(at))} · reloads every 30 s · <a href="status.json">JSON</a></div>')


def _health_table(health: Sequence[Component]) -> str:
    rows = "".join(
        f'<tr class="{c.light}-row" data-light="{c.light}"><td><span class="light {c.light}"></span>{escape(c.name)}'
        f"</td><td>{escape(c.summary)}</td><td>{_link(c.link, 'open') if c.link else ''}</td></tr>" for c in health)
    return f'<h2>Health</h2><table id="health"><tbody>{rows}</tbody></table>'


def _freshness_table(hourly: Sequence[HourCounts]) -> str:
    rows: list[list[str | int]] = [
        [escape(iso_utc(h.hour)[:16].replace("T", " ")), measured(h.freshness, "queued"),
         *(escape(say_within(percentile(h.freshness, kind, q))) for kind in FRESHNESS for q in (0.5, 0.95))]
        for h in reversed(hourly) if measured(h.freshness, "queued")]
    head = ["hour", "indexed"] + [f"{k} → indexed {p}" for k in FRESHNESS for p in ("p50", "p95")]
    return '<h2 id="freshness">Freshness, newest hour first (UTC)</h2>' + (
        _table(head, rows) if rows else '<p class="muted">nothing indexed in the last 24 hours</p>')


def _link(href: str, text: str) -> str:
    """A link that leaves the embedded page (the Airflow UI's frame) for the whole window; a relative ``href`` is
    a page of the Airflow UI (this page is ``<UI>/ingest/``)."""
    if not href.startswith(("http://", "https://")):
        href = f"../{href}"
    return f'<a href="{escape(href)}" target="_top">{escape(text)}</a>'


def _table(header: list[str], rows: Sequence[Sequence[str | int]]) -> str:
    """A table of HTML cells (escaped by the caller) and numbers (right-aligned, thousands separated)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{c:,}</td>' if isinstance(c, int) else f"<td>{c}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _document(body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">'
            f"<title>Ingest pipeline</title><style>{STYLE}</style></head><body>{body}</body></html>")


app = create_app()
