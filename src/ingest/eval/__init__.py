"""Scoring against gold data, shared by ``bench/`` and the tests: extraction (``extraction``), dedup and story
pairs (``dedup_sets``), named entities (``ner``). Not used by the pipeline."""
