"""Links for operators in the Airflow UI: the articles in Kibana. No business logic here."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from ingest.config import load_settings


def kibana_discover_url(kibana_url: str) -> str:
    """Kibana's Discover page under a Kibana base URL."""
    return f"{kibana_url.rstrip('/')}/app/discover"


class IngestPlugin(AirflowPlugin):
    """``ingest``: an entry in the Airflow navigation bar that opens Kibana's Discover page."""

    name = "ingest"
    # Without ``url_route`` an external view is a plain link (opened in a new tab), not an embedded page.
    external_views: list[Any] = [  # noqa: RUF012 - AirflowPlugin declares it a list
        {
            "name": "Articles in Kibana",
            "href": kibana_discover_url(load_settings().kibana.url),
            "destination": "nav",
            "category": "Ingest",
        },
    ]
