"""Adapters for the stores the pipeline talks to, each behind a small Protocol."""

from __future__ import annotations

from ingest.stores.base import ArticleSink, DedupStore, FeedStateStore, PendingQueue, QueuedEntry

__all__ = ["ArticleSink", "DedupStore", "FeedStateStore", "PendingQueue", "QueuedEntry"]
