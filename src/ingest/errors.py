"""Error kinds that decide what happens to a piece of work.

- ``TransientError``: try again later (the entry stays pending).
- ``PermanentError``: this input will never work; skip it, count the reason, dead-letter it.
- ``ConfigError``: the operator must fix something; fail fast with one clear line.
"""

from __future__ import annotations

from ingest.redact import redact


class IngestError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class ConfigError(IngestError):
    """Settings or input files are wrong; nothing can run until they are fixed."""


class ServiceUnavailableError(IngestError):
    """A backing service (Redis, Elasticsearch) cannot be reached."""

    def __init__(self, service: str, where: str, hint: str) -> None:
        where, hint = redact(where), redact(hint)
        super().__init__(f"{service} is not reachable at {where}: {hint}")
        self.service = service
        self.where = where
        self.hint = hint


class StageError(IngestError):
    """A failure tied to one URL, with a short machine-readable reason."""

    def __init__(self, reason: str, url: str, detail: str = "") -> None:
        message = f"{reason}: {url}" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.reason = reason
        self.url = url
        self.detail = detail


class TransientError(StageError):
    """Worth retrying: timeouts, 5xx, 429, connection resets; ``retry_after`` in seconds when the server said."""

    def __init__(self, reason: str, url: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, url, detail)
        self.retry_after = retry_after


class PermanentError(StageError):
    """Retrying will not help: 4xx, not HTML, too large, nothing to extract."""


class StopRequestedError(IngestError):
    """The worker was asked to stop (SIGTERM, SIGINT) while it waited on ``url``: hand the entry back."""

    def __init__(self, url: str) -> None:
        super().__init__(f"stopping: {url} left for another worker")
        self.url = url


class StateLostError(IngestError):
    """Redis or the index lost what the other remembers (a restart without persistence, a wiped or restored
    index): nothing runs until ``ingest index verify --repair`` reconciles them."""
