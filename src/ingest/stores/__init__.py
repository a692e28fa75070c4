"""Adapters for the stores the pipeline talks to, each behind a small Protocol (``ingest.stores.base``)."""
