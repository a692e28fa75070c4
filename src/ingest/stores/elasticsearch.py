"""The Elasticsearch adapter: client factory, index setup and bulk writes with per-item outcomes."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from ingest.config import ElasticsearchSettings
from ingest.errors import ServiceUnavailableError
from ingest.index import index_names, index_template
from ingest.stores.base import ItemOutcome

logger = logging.getLogger(__name__)


def build_es_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """The one place the client is built; ``server_mode`` is the only difference between a real
    Elasticsearch 9 ("stack") and an OpenSearch-API test server ("serverless": plain JSON media type)."""
    kwargs: dict[str, Any] = {"request_timeout": settings.request_timeout, "max_retries": 2, "retry_on_timeout": True}
    if settings.server_mode == "serverless":
        kwargs["server_mode"] = "serverless"
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    elif settings.username and settings.password:
        kwargs["basic_auth"] = (settings.username, settings.password)
    return Elasticsearch(settings.hosts, **kwargs)


def check_search_server(client: Elasticsearch, where: str) -> None:
    """Raise ``ServiceUnavailableError`` with a hint when the server does not answer."""
    try:
        client.info()
    except (TransportError, ApiError) as e:
        raise ServiceUnavailableError(
            "the search server",
            where,
            "start it (`ingest services start` for the embedded one) or set INGEST_ELASTICSEARCH__HOSTS",
        ) from e


class ElasticsearchSink:
    """Writes documents through the write alias; ids make every write an idempotent upsert."""

    def __init__(self, client: Elasticsearch, settings: ElasticsearchSettings) -> None:
        self.client = client
        self.settings = settings
        self.index, self.read_alias, self.write_alias = index_names(settings.index_prefix)
        self._ready = False

    def ensure_ready(self) -> None:
        """Install the template and the first index with its aliases; safe to call every time."""
        self._ready = True
        template = index_template(self.settings.index_prefix)
        self.client.indices.put_index_template(name=self.settings.index_prefix, **template)
        if not self.client.indices.exists_alias(name=self.read_alias):
            self.client.indices.create(
                index=self.index,
                aliases={self.read_alias: {}, self.write_alias: {"is_write_index": True}},
            )

    def write(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> list[ItemOutcome]:
        """Bulk-index ``(id, document)`` pairs; 429/5xx items are retried, others reported."""
        if not self._ready:
            # Writing through a missing alias would create a bare index without the template's mapping.
            self.ensure_ready()
        outcomes: dict[str, ItemOutcome] = {}
        todo = list(documents)
        for attempt in range(self.settings.bulk_retries + 1):
            if not todo:
                break
            if attempt:
                time.sleep(min(0.5 * 2**attempt, 10.0))
            operations: list[dict[str, Any]] = []
            for doc_id, doc in todo:
                operations.append({"index": {"_index": self.write_alias, "_id": doc_id}})
                operations.append(doc)
            try:
                response = self.client.bulk(operations=operations, refresh="wait_for")
            except TransportError as e:
                # The server is gone: nothing of this batch is acknowledged, it all stays pending.
                raise ServiceUnavailableError(
                    "the search server", ", ".join(self.settings.hosts), "the batch stays pending; retry when it is up"
                ) from e
            retry: list[tuple[str, dict[str, Any]]] = []
            for (doc_id, doc), item in zip(todo, response["items"], strict=True):
                result = item.get("index", {})
                status = int(result.get("status", 0))
                error = result.get("error")
                outcome = ItemOutcome(doc_id, ok=200 <= status < 300, status=status, error=_describe(error))
                outcomes[doc_id] = outcome
                if outcome.retryable:
                    retry.append((doc_id, doc))
            todo = retry
        return [outcomes[doc_id] for doc_id, _ in documents]


def _describe(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"[:300]
    return str(error)[:300]
