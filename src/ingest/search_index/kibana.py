"""Kibana: the data view, saved search and dashboard kept in the repo, installed by ``ingest kibana setup``.

The saved objects live in ``saved_objects/kibana.ndjson`` (package data), in the format Kibana's export writes.
Loading them and fitting them to the index prefix is pure; the one request, a multipart upload to the
saved-objects import API with ``overwrite=true``, goes through an ``httpx.Client`` the caller passes in. The
objects have fixed ids, so a second import replaces them instead of adding copies.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import httpx

from ingest.config import KibanaSettings
from ingest.errors import ConfigError, IngestError, ServiceUnavailableError
from ingest.jsonl import json_objects
from ingest.search_index.template import index_names

__all__ = [
    "DASHBOARD_ID",
    "DATA_VIEW_ID",
    "ImportReport",
    "auth_headers",
    "build_kibana_client",
    "dashboard_url",
    "destination_id",
    "discover_url",
    "import_saved_objects",
    "import_url",
    "load_saved_objects",
    "parse_import_answer",
    "parse_ndjson",
    "saved_objects_for",
    "setup_kibana",
    "space_base",
    "to_ndjson",
]

logger = logging.getLogger(__name__)

SAVED_OBJECTS = "saved_objects/kibana.ndjson"
DATA_VIEW_ID = "ingest-news-data-view"
DASHBOARD_ID = "ingest-news-dashboard"
# Kibana checks the extension of the uploaded file's name.
UPLOAD_NAME = "ingest-saved-objects.ndjson"
REQUEST_TIMEOUT = 30.0
_SPACE_ID = re.compile(r"^[a-z0-9_-]+$")  # Kibana's rule for space identifiers
_SETTINGS_HINT = "set INGEST_KIBANA__API_KEY, or INGEST_KIBANA__USERNAME and INGEST_KIBANA__PASSWORD"


@dataclass(frozen=True)
class ImportReport:
    """What Kibana said about one import: objects written, and one line per object it refused."""

    where: str
    success_count: int
    errors: tuple[str, ...]
    # Kibana gives an imported object a new id when one with its id exists in another space.
    dashboard_id: str = DASHBOARD_ID


# ------------------------------------------------------------------ pure: the objects


def parse_ndjson(text: str, source: str) -> list[dict[str, Any]]:
    """One saved object per non-blank line; a line that is not a JSON object is a ``ConfigError``."""
    objects: list[dict[str, Any]] = []
    for number, value in json_objects(text.splitlines(), source):
        if not {"type", "id", "attributes"} <= value.keys():
            raise ConfigError(f"{source}:{number}: not a saved object (needs type, id and attributes)")
        objects.append(value)
    return objects


def load_saved_objects() -> list[dict[str, Any]]:
    """The saved objects shipped with the package, as written in the file (data view over the alias ``news``)."""
    text = resources.files("ingest.search_index").joinpath(SAVED_OBJECTS).read_text(encoding="utf-8")
    return parse_ndjson(text, SAVED_OBJECTS)


def saved_objects_for(objects: Sequence[Mapping[str, Any]], index_prefix: str) -> list[dict[str, Any]]:
    """The objects with the data view pointed at the read alias of ``index_prefix``; the rest unchanged."""
    read_alias = index_names(index_prefix)[1]
    fitted: list[dict[str, Any]] = []
    for obj in objects:
        fitted_obj = copy.deepcopy(dict(obj))
        if fitted_obj["type"] == "index-pattern" and fitted_obj["id"] == DATA_VIEW_ID:
            fitted_obj["attributes"]["title"] = read_alias
        fitted.append(fitted_obj)
    return fitted


def to_ndjson(objects: Iterable[Mapping[str, Any]]) -> bytes:
    """The upload body: one compact JSON object per line."""
    return "".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n" for o in objects).encode()


# ------------------------------------------------------------------ pure: where and how to ask


def space_base(kibana_url: str, space: str) -> str:
    """Kibana's base URL for a space (``/s/<space>``; the default space has no prefix)."""
    if not _SPACE_ID.match(space):
        raise ConfigError(f"Kibana space {space!r} is not a space id (lowercase letters, digits, '_' and '-'); "
                          "fix INGEST_KIBANA__SPACE or --space")
    base = kibana_url.rstrip("/")
    return base if space == "default" else f"{base}/s/{space}"


def import_url(kibana_url: str, space: str) -> str:
    """The saved-objects import endpoint, overwriting objects that exist (what makes the import idempotent)."""
    return f"{space_base(kibana_url, space)}/api/saved_objects/_import?overwrite=true"


def dashboard_url(kibana_url: str, space: str, dashboard_id: str = DASHBOARD_ID) -> str:
    """Where a browser opens the installed dashboard."""
    return f"{space_base(kibana_url, space)}/app/dashboards#/view/{dashboard_id}"


def discover_url(kibana_url: str, space: str, kql: str = "", since: str = "now-24h") -> str:
    """Kibana's Discover on the shipped data view: the documents matching ``kql`` (KQL; empty: all) published
    since ``since`` (date math). Rison in the URL's fragment, as Kibana writes it."""
    state = f"(dataSource:(dataViewId:{_rison(DATA_VIEW_ID)},type:dataView)"
    if kql:
        state += f",query:(language:kuery,query:{_rison(kql)})"
    return (f"{space_base(kibana_url, space)}/app/discover#/?_g=(time:(from:{_rison(since)},to:now))"
            f"&_a={quote(state + ')', safe='():,!*')}")


def _rison(text: str) -> str:
    """A rison string: quoted with ', in which ! and ' are escaped with !."""
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"


def auth_headers(settings: KibanaSettings) -> dict[str, str]:
    """``Authorization`` from the settings: an API key wins over user and password; none for an open Kibana."""
    if settings.api_key:
        return {"Authorization": f"ApiKey {settings.api_key}"}
    if settings.username or settings.password:
        if not (settings.username and settings.password):
            raise ConfigError(f"Kibana basic auth needs both a user and a password: {_SETTINGS_HINT}")
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return {}


def parse_import_answer(answer: Mapping[str, Any]) -> tuple[int, tuple[str, ...]]:
    """``(successCount, one line per refused object)`` of an import answer."""
    lines = []
    for error in answer.get("errors") or []:
        title = (error.get("meta") or {}).get("title") or error.get("title") or ""
        detail = error.get("error") or {}
        kind = str(detail.get("type", "unknown"))
        missing = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references") or [])
        reason = f"missing {missing}" if missing else _one_line(str(detail.get("message") or ""))
        named = f" ({title})" if title else ""
        lines.append(f"{error.get('type')} {error.get('id')}{named}: {kind}" + (f": {reason}" if reason else ""))
    return int(answer.get("successCount") or 0), tuple(lines)


def destination_id(answer: Mapping[str, Any], obj_type: str, obj_id: str) -> str:
    """The id an imported object got: its own, or the ``destinationId`` Kibana reports for it."""
    for result in answer.get("successResults") or []:
        if result.get("type") == obj_type and result.get("id") == obj_id:
            return str(result.get("destinationId") or obj_id)
    return obj_id


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _refusal(status: int, body: str, where: str) -> IngestError:
    """The error a non-2xx answer stands for, worded for the person who has to fix it."""
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        answer = None
    message = (answer.get("message") or answer.get("error") or body) if isinstance(answer, dict) else body
    said = f"HTTP {status}" + (f" {_one_line(str(message))}" if str(message).strip() else "")
    if status in (401, 403):
        return ConfigError(f"Kibana at {where} refused the import ({said}); {_SETTINGS_HINT}, for a user "
                           "allowed to manage saved objects")
    if status == 404:
        return ConfigError(f"no Kibana saved-objects API at {where} ({said}); check INGEST_KIBANA__URL (or --url) "
                           "and that the space exists (INGEST_KIBANA__SPACE or --space)")
    if status in (501, 505):  # the server does not do what Kibana does: another program answers there
        return ConfigError(f"what answers at {where} is not Kibana's API ({said}); check INGEST_KIBANA__URL (or --url)")
    if status >= 500:
        return ServiceUnavailableError("Kibana", where, f"it answered {said}; wait until it is ready and run again")
    return IngestError(f"Kibana at {where} rejected the import ({said})")


# ------------------------------------------------------------------ edge: the request


def build_kibana_client() -> httpx.Client:
    """The client for Kibana's API. Kibana usually sits on a private network, so the article fetcher's
    private-address guard (``ingest.http``) does not apply here."""
    return httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False)


def import_saved_objects(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> ImportReport:
    """POST the NDJSON to the import endpoint as the multipart ``file`` field and read Kibana's answer."""
    where = url.split("?", 1)[0]
    try:
        response = client.post(
            url,
            headers={"kbn-xsrf": "true", **headers},
            files={"file": (UPLOAD_NAME, body, "application/ndjson")},
        )
    except httpx.TransportError as e:
        raise ServiceUnavailableError(
            "Kibana", where, f"{type(e).__name__}; start Kibana or point INGEST_KIBANA__URL (or --url) at it"
        ) from e
    if response.status_code >= 300:
        raise _refusal(response.status_code, response.text, where)
    try:
        answer = response.json()
    except json.JSONDecodeError as e:
        raise IngestError(f"{where} answered HTTP {response.status_code} without JSON; is INGEST_KIBANA__URL "
                          "the Kibana server?") from e
    if not isinstance(answer, dict):
        raise IngestError(f"{where} answered {type(answer).__name__} instead of an import result")
    success_count, errors = parse_import_answer(answer)
    logger.info("kibana import at %s: %d written, %d refused", where, success_count, len(errors))
    return ImportReport(where=where, success_count=success_count, errors=errors,
                        dashboard_id=destination_id(answer, "dashboard", DASHBOARD_ID))


def setup_kibana(client: httpx.Client, settings: KibanaSettings, index_prefix: str) -> ImportReport:
    """Install the data view, saved search and dashboard for ``index_prefix`` into the configured space."""
    objects = saved_objects_for(load_saved_objects(), index_prefix)
    return import_saved_objects(client, import_url(settings.url, settings.space), to_ndjson(objects),
                                auth_headers(settings))
