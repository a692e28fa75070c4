"""The pipeline view operators open from the Airflow UI: queue depth, throughput per hour, outcomes and the
feeds that need attention (``ingest.status.pipeline_status``, rendered; no logic of its own).

A FastAPI app the plugin mounts under ``/ingest`` on Airflow's API server: ``/ingest/`` is the page (embedded in
the UI as the "Pipeline" view), ``/ingest/status.json`` the same data as JSON. Each request reads the settings
and Redis afresh; the page reloads itself every 30 seconds. Plugin apps are not behind Airflow's login by
themselves: both routes ask Airflow's auth manager, as the UI's own pages do, for a user allowed the
"cluster activity" view (the UI's session cookie, or a bearer token).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from ingest.config import resolve_settings
from ingest.dates import iso_utc
from ingest.errors import IngestError

if TYPE_CHECKING:
    from ingest.status import PipelineStatus

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:16px;color:#1a202c}h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:20px 0 6px}table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;
border-bottom:1px solid #e2e8f0}td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{display:inline-block;
height:10px;background:#3182ce}.muted{color:#718096}.warn{color:#c53030}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:120px}.card b{display:block;font-size:22px}
"""


def create_app() -> FastAPI:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    app = FastAPI(title="ingest pipeline view", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(requires_access_view(AccessView.CLUSTER_ACTIVITY))])

    @app.get("/status.json")
    def status_json() -> JSONResponse:
        status, error = _status()
        if status is None:
            return JSONResponse({"error": error}, status_code=503)
        return JSONResponse(status.as_dict())

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        status, error = _status()
        if status is None:
            return HTMLResponse(_document(_error_page(error)), status_code=503)
        return HTMLResponse(_document(render(status)))

    return app


def _status() -> tuple[PipelineStatus | None, str]:
    """The status with the settings of this request (no error), or None and the one-line reason."""
    from ingest.status import pipeline_status

    try:
        return pipeline_status(resolve_settings(), datetime.now(UTC)), ""
    except IngestError as e:  # Redis down, a broken registry: say so on the page, not a stack trace
        return None, str(e)


def render(status: PipelineStatus) -> str:
    """The page's body for a :func:`~ingest.status.pipeline_status` result (HTML, every value escaped)."""
    q, feeds = status.queue, status.feeds
    cards = [
        ("waiting", q.pending, ""),
        ("never read", q.unread, ""),
        ("stale", q.stale, "warn" if q.stale else ""),
        ("dead letters", q.dead_letters, "warn" if q.dead_letters else ""),
        ("indexed this hour", status.last_hour.get("index/indexed", 0), ""),
        ("indexed in 24 h", status.last_day.get("index/indexed", 0), ""),
    ]
    parts = [
        "<h1>Ingest pipeline</h1>",
        f'<div class="muted">at {escape(iso_utc(status.at))} · reloads every 30 s · '
        '<a href="status.json">JSON</a></div>',
        f'<p class="warn" id="state">{escape(status.state_problem)}</p>' if status.state_problem else "",
        '<h2>Queue</h2><div class="cards">'
        + "".join(f'<div class="card {cls}"><b>{value}</b>{escape(label)}</div>' for label, value, cls in cards)
        + "</div>",
    ]
    if q.stale:
        parts.append(f'<p class="warn">{q.stale} entries delivered to a worker that has not acknowledged them '
                     f'for {q.oldest_stale_seconds:.0f} s: the next batch reclaims them (ingest_maintenance '
                     "wakes the process DAG).</p>")
    if q.dead_by_reason:
        parts.append("<h2>Dead letters by reason</h2>" + _table(
            ["reason", "entries"], [[escape(k), v] for k, v in q.dead_by_reason.items()]) +
            '<p class="muted">replay: trigger ingest_maintenance with {"replay_reason": "…"}, or '
            "<code>ingest dlq replay --reason …</code></p>")
    peak = max((max(h.counts.values(), default=0) for h in status.hourly), default=0) or 1
    names = list(status.last_day)
    rows = [[escape(iso_utc(h.hour)[11:16])]
            + [h.counts[k] for k in names]
            + [f'<span class="bar" style="width:{round(120 * h.counts["index/indexed"] / peak)}px"></span>']
            for h in status.hourly]
    parts.append("<h2>Throughput, last 24 hours (UTC)</h2>"
                 + _table(["hour", *names, "indexed"], rows))
    parts.append(f"<h2>Feeds ({feeds['feeds']})</h2>" + (" · ".join(
        f"{escape(k)} {v}" for k, v in feeds["by_state"].items()) or '<span class="muted">none in the registry</span>'))
    if feeds["attention"]:
        parts.append(_table(["feed", "state", "failures", "failing since", "last error"], [
            [escape(f["id"]), f'<span class="warn">{escape(f["state"])}</span>', f["consecutive_failures"],
             escape(f["failing_since"] or ""), escape(f["last_error"] or "")] for f in feeds["attention"]]))
    parts.append("<h2>Outcomes, all runs</h2>" + _table(
        ["counter", "count"], [[escape(k), v] for k, v in sorted(status.counts.items())]))
    return "\n".join(parts)


def _table(header: list[str], rows: Sequence[Sequence[str | int]]) -> str:
    """A table of HTML cells (escaped by the caller) and numbers (right-aligned, thousands separated)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{c:,}</td>' if isinstance(c, int) else f"<td>{c}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _error_page(error: str) -> str:
    return f'<h1>Ingest pipeline</h1><p class="warn">{escape(error)}</p>'


def _document(body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">'
            f"<title>Ingest pipeline</title><style>{STYLE}</style></head><body>{body}</body></html>")


app = create_app()
