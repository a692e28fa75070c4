"""The Elasticsearch adapter: client factory, index setup and bulk writes with per-item outcomes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, TransportError, helpers

from ingest.config import ElasticsearchSettings
from ingest.errors import ConfigError, ServiceUnavailableError
from ingest.models import ItemOutcome
from ingest.redact import redact
from ingest.search_index.template import (
    IndexState,
    index_names,
    index_pattern,
    index_template,
    parse_index_state,
    stamp_template,
)

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
    except ApiError as e:
        if e.meta.status in (401, 403):
            raise ConfigError(f"the search server at {redact(where)} refused the credentials (HTTP {e.meta.status}); "
                              "check INGEST_ELASTICSEARCH__API_KEY or USERNAME and PASSWORD") from None
        raise ServiceUnavailableError(
            "the search server", where, f"it answered HTTP {e.meta.status}; check INGEST_ELASTICSEARCH__HOSTS"
        ) from e
    except TransportError as e:
        raise ServiceUnavailableError(
            "the search server",
            where,
            "start it (`ingest services start` for the embedded one) or set INGEST_ELASTICSEARCH__HOSTS",
        ) from e


def install_template(client: Elasticsearch, prefix: str, template: dict[str, Any] | None = None) -> None:
    """Put the index template (the repo's unless given; stamped with its fingerprint) under the prefix's name.
    Only indices created afterwards take it: moving existing data to it is `ingest index migrate`'s job."""
    body = stamp_template(template) if template is not None else index_template(prefix)
    client.indices.put_index_template(name=prefix, **body)


def create_index(client: Elasticsearch, index: str, aliases: dict[str, Any] | None = None,
                 settings: dict[str, Any] | None = None) -> bool:
    """Create an index (the template matching its name gives the mapping; ``settings`` win over the template's);
    False when it exists already, as when another worker or an earlier, interrupted run created it."""
    try:
        client.indices.create(index=index, aliases=aliases, settings=settings)
    except BadRequestError as e:
        if e.error == "resource_already_exists_exception":
            return False
        raise
    return True


def read_index_state(client: Elasticsearch, prefix: str) -> IndexState:
    """Which ``<prefix>-v<N>`` indices exist, the template each was made from, and where the aliases point."""
    pattern = index_pattern(prefix)
    aliases = client.indices.get_alias(index=pattern).body
    mappings = client.indices.get_mapping(index=pattern).body
    return parse_index_state(prefix, aliases, mappings)


class ElasticsearchSink:
    """Writes documents through the write alias; ids make every write an idempotent upsert."""

    def __init__(self, client: Elasticsearch, settings: ElasticsearchSettings) -> None:
        self.client = client
        self.settings = settings
        self.index, self.read_alias, self.write_alias = index_names(settings.index_prefix)
        self._ready = False

    def ensure_ready(self) -> None:
        """Install the template, and the first index with both aliases unless the read alias exists already (on
        whichever version `ingest index migrate` left it); safe to call every time, from several workers at once."""
        s = self.settings
        # With the deployment's shards and replicas, as `ingest index setup` installs it: a pipeline run that
        # comes first (the demo, a fresh compose stack) makes the same index.
        install_template(self.client, s.index_prefix,
                         index_template(s.index_prefix, s.number_of_shards, s.number_of_replicas))
        if not self.client.indices.exists_alias(name=self.read_alias):
            aliases = {self.read_alias: {}, self.write_alias: {"is_write_index": True}}
            if not create_index(self.client, self.index, aliases) and not self.client.indices.exists_alias(
                name=self.read_alias
            ):
                # Writing through a missing write alias would create a bare index named after it.
                raise ConfigError(f"index {self.index} exists without the alias {self.read_alias!r}: add both aliases "
                                  f"to it (POST _aliases) or delete it, then run `ingest index setup`")
        self._ready = True

    def write(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> list[ItemOutcome]:
        """Bulk-index ``(id, document)`` pairs in requests of at most ``bulk_max_docs`` documents and
        ``bulk_max_bytes`` bytes; one outcome per document, in order. 429/5xx items are retried with backoff,
        never the whole request; a document larger than bulk_max_bytes is refused here (413), unsent."""
        if not self._ready:
            # Writing through a missing alias would create a bare index without the template's mapping.
            self.ensure_ready()
        outcomes: dict[str, ItemOutcome] = {}
        lines: list[tuple[str, bytes]] = []
        for doc_id, doc in documents:
            line = _action(self.write_alias, doc_id) + json.dumps(doc, ensure_ascii=False).encode() + b"\n"
            if len(line) > self.settings.bulk_max_bytes:
                outcomes[doc_id] = ItemOutcome(doc_id, ok=False, status=413, error=(
                    f"document too large: {len(line)} bytes > INGEST_ELASTICSEARCH__BULK_MAX_BYTES "
                    f"({self.settings.bulk_max_bytes})"))
            else:
                lines.append((doc_id, line))
        for chunk in chunks(lines, self.settings.bulk_max_docs, self.settings.bulk_max_bytes):
            outcomes.update(self._write_chunk(chunk))
        return [outcomes[doc_id] for doc_id, _ in documents]

    def read(self, ids: Sequence[str], fields: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``fields`` of the documents with these ids that are in the index (through the read alias); a missing
        one is left out, and so is everything when the search server cannot answer (the caller does without)."""
        try:
            response = self.client.mget(index=self.read_alias, ids=list(ids), source_includes=sorted(fields))
        except (TransportError, ApiError) as e:
            logger.warning("could not read %d documents back: %s", len(ids), e)
            return {}
        return {doc["_id"]: doc["_source"] for doc in response["docs"] if doc.get("found")}

    def missing(self, ids: Sequence[str]) -> list[str]:
        """The ids (in order) that the index does not hold, asked 1,000 at a time."""
        absent: list[str] = []
        for start in range(0, len(ids), 1000):
            part = list(ids[start : start + 1000])
            try:
                response = self.client.mget(index=self.read_alias, ids=part, source=False)
            except NotFoundError:  # no index at all
                return list(ids)
            except (TransportError, ApiError) as e:
                raise ServiceUnavailableError("the search server", ", ".join(self.settings.hosts),
                                              "it could not answer which documents it holds; run again") from e
            absent.extend(doc["_id"] for doc in response["docs"] if not doc.get("found"))
        return absent

    def recent(self, since: datetime, fields: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, fields)`` of every document fetched since ``since`` (scrolled)."""
        query = {"query": {"range": {"fetched_at": {"gte": since.isoformat()}}}}
        try:
            for hit in helpers.scan(self.client, index=self.read_alias, query=query, size=1000, scroll="5m",
                                    _source=sorted(fields)):
                yield hit["_id"], hit.get("_source", {})
        except NotFoundError:
            return

    def epoch(self, name: str) -> str | None:
        """The state identity kept under ``name`` in ``<prefix>-state`` (an index of its own, out of the read alias
        and the template's pattern, so analysts never see it); None when there is none."""
        try:
            found = self.client.get(index=self.state_index, id=f"epoch-{name}")
        except NotFoundError:
            return None
        value = found["_source"].get("epoch")
        return str(value) if value else None

    def set_epoch(self, name: str, value: str) -> None:
        self.client.index(index=self.state_index, id=f"epoch-{name}", document={"epoch": value}, refresh=True)

    @property
    def state_index(self) -> str:
        return f"{self.settings.index_prefix}-state"

    def _write_chunk(self, chunk: list[tuple[str, bytes]]) -> dict[str, ItemOutcome]:
        """One bulk request's worth. Items refused for load (429, 5xx) are sent again alone, with backoff. A whole
        request refused for load is sent again within the same bound, then the batch is left pending
        (``ServiceUnavailableError``); one refused as too large (413, a proxy's body limit) is split in halves until
        a single document is refused on its own, which is then too large for good (dead-lettered by the caller)."""
        outcomes: dict[str, ItemOutcome] = {}
        todo = chunk
        for attempt in range(self.settings.bulk_retries + 1):
            if not todo:
                break
            if attempt:
                time.sleep(_backoff(attempt))
            try:
                # Serialised once (to measure bytes); the client's NDJSON serializer sends bytes lines as they are.
                lines: Any = [line for _, line in todo]
                response = self.client.bulk(operations=lines, refresh="wait_for")
            except TransportError as e:
                # The server is gone: nothing of this batch is acknowledged, it all stays pending.
                raise ServiceUnavailableError(
                    "the search server", ", ".join(self.settings.hosts), "the batch stays pending; retry when it is up"
                ) from e
            except ApiError as e:
                status = e.meta.status
                if status == 413:
                    return outcomes | self._split(todo, describe_error(e.body) or "request entity too large")
                if status in (401, 403):
                    where = redact(", ".join(self.settings.hosts))
                    raise ConfigError(f"the search server at {where} refused the credentials (HTTP {status}); check "
                                      "INGEST_ELASTICSEARCH__API_KEY or USERNAME and PASSWORD") from None
                if status == 429 or status >= 500:
                    if attempt < self.settings.bulk_retries:
                        logger.warning("the search server refused a bulk request (HTTP %d); retrying", status)
                        time.sleep(_retry_after(e.meta.headers.get("retry-after")))
                        continue
                    raise ServiceUnavailableError(
                        "the search server", ", ".join(self.settings.hosts),
                        f"it refused the bulk request with HTTP {status} {attempt + 1} times (overloaded or "
                        "restarting); the batch stays pending, run again when it has recovered") from e
                raise
            retry: list[tuple[str, bytes]] = []
            for (doc_id, line), item in zip(todo, response["items"], strict=True):
                result = item.get("index", {})
                status = int(result.get("status", 0))
                error = describe_error(result.get("error"))
                outcome = ItemOutcome(doc_id, ok=200 <= status < 300, status=status, error=error)
                outcomes[doc_id] = outcome
                if outcome.retryable:
                    retry.append((doc_id, line))
            todo = retry
        return outcomes

    def _split(self, todo: list[tuple[str, bytes]], said: str) -> dict[str, ItemOutcome]:
        """``todo`` written again in two halves after a 413; a lone document refused so is too large for good."""
        if len(todo) == 1:
            doc_id, line = todo[0]
            return {doc_id: ItemOutcome(doc_id, ok=False, status=413, error=(
                f"document too large for the search server: {len(line)} bytes refused on its own (HTTP 413: "
                f"{said}); lower INGEST_ELASTICSEARCH__BULK_MAX_BYTES below the server's or proxy's limit"))}
        half = len(todo) // 2
        logger.warning("the search server refused a bulk request of %d documents as too large; splitting it", len(todo))
        return self._write_chunk(todo[:half]) | self._write_chunk(todo[half:])


def _backoff(attempt: int) -> float:
    return min(0.5 * 2.0**attempt, 10.0)


def _retry_after(header: str | None) -> float:
    """What the server asked for in ``Retry-After`` (seconds), within 0–5 s; 0 when it said nothing usable (the
    loop's own backoff applies anyway)."""
    try:
        return min(max(float(header or 0), 0.0), 5.0)
    except ValueError:
        return 0.0


def _action(index: str, doc_id: str) -> bytes:
    return json.dumps({"index": {"_index": index, "_id": doc_id}}).encode() + b"\n"


def chunks(lines: Sequence[tuple[str, bytes]], max_docs: int, max_bytes: int) -> list[list[tuple[str, bytes]]]:
    """Consecutive groups of at most ``max_docs`` items and ``max_bytes`` bytes (an item is never split)."""
    groups: list[list[tuple[str, bytes]]] = []
    size = 0
    for item in lines:
        if not groups or len(groups[-1]) >= max_docs or size + len(item[1]) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[1])
    return groups


def describe_error(error: Any) -> str | None:
    """One line (at most 300 characters) from a bulk item's or an API error body."""
    if not error:
        return None
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"[:300]
    return str(error)[:300]
