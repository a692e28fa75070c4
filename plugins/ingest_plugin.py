"""What operators get in the Airflow UI: the pipeline view (queue depth, throughput, failing feeds) and a link to
the articles in Kibana. No business logic here: the view is ``ingest.airflow.pipeline_view``."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from ingest.airflow.declared import declared_settings
from ingest.airflow.pipeline_view import app as pipeline_view_app

# Where the API server mounts the pipeline view (its page is <API server>/ingest/).
VIEW_PREFIX = "/ingest"


def kibana_discover_url(kibana_url: str) -> str:
    """Kibana's Discover page under a Kibana base URL."""
    return f"{kibana_url.rstrip('/')}/app/discover"


class IngestPlugin(AirflowPlugin):
    """``ingest``: the "Pipeline" page embedded in the UI, and "Articles in Kibana", a plain link."""

    name = "ingest"
    fastapi_apps: list[Any] = [  # noqa: RUF012 - AirflowPlugin declares it a list
        {"app": pipeline_view_app, "url_prefix": VIEW_PREFIX, "name": "ingest pipeline view"},
    ]
    external_views: list[Any] = [  # noqa: RUF012 - AirflowPlugin declares it a list
        # With ``url_route`` the page is embedded in the UI (an iframe under /plugin/ingest-pipeline); href is
        # relative to the UI's base URL, so it works behind a reverse proxy.
        {
            "name": "Pipeline",
            "href": VIEW_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "Ingest",
            "url_route": "ingest-pipeline",
        },
        # Without ``url_route`` an external view is a plain link (opened in a new tab), not an embedded page.
        {
            "name": "Articles in Kibana",
            "href": kibana_discover_url(declared_settings().kibana.url),
            "destination": "nav",
            "category": "Ingest",
        },
    ]
