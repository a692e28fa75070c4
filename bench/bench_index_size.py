"""What one indexed article weighs: its ``_source`` bytes, field by field, and the fields of the mapping.

    .venv/bin/python bench/bench_index_size.py [--copies 1] [--url URL --mode stack [--store]] [--json]

Documents: the 68 real pages of the end-to-end corpus (``bench/e2e_corpus.py``: 55 fundus pages in fr, en and de,
13 French pages of trafilatura's evaluation set) through the pipeline's own code: ``extract_article`` +
``build_article``, ``enrich_articles`` with the configured spaCy models (NER for fr and en; other languages are
indexed without entities, as in the pipeline), ``story_id`` set as the dedup stage sets it for a new article, then
``ingest.index.to_document``. ``--copies`` repeats them with their own ids (the sizes do not change; it only makes
the write bigger).

They are written with ``ElasticsearchSink.write`` into a fresh index made from the project's template (an osmem
spawned on a free port unless ``--url`` names a server), then read back. Printed:

- the ``_source`` bytes per document: the JSON the sink sends (``json.dumps(doc, ensure_ascii=False)``), which is
  what Elasticsearch keeps as ``_source``; mean, median, p90 and max, and the mean by language;
- the mean bytes of each top-level field (its key and value as serialised), largest first, with its share;
- the fields of the mapping the server returned for the index: leaf fields (multi-fields included, the paths a
  query can name) and the count Elasticsearch holds against ``index.mapping.total_fields.limit`` (objects too);
- with ``--store`` (a real Elasticsearch at ``--url``; ``--copies 100`` or more, so that a shard's fixed cost
  does not dominate): the primaries' store size per document after a force merge to one segment.

osmem keeps everything in memory: nothing on disk is measured on it, and ``--store`` refuses to run without ``--url``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from e2e_corpus import FIXTURES, load_pages  # bench/ is on sys.path when run as a script

from ingest.config import ElasticsearchSettings, NlpSettings
from ingest.embedded.services import search_server
from ingest.enrich import NerModels, enrich_articles
from ingest.errors import PermanentError
from ingest.extract import build_article, extract_article
from ingest.index import to_document
from ingest.lang import normalise_language
from ingest.models import Article, FeedEntry
from ingest.search_index.template import index_names
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client

FETCHED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
READ_BACK = 1000
Documents = list[tuple[str, dict[str, Any]]]


def corpus_articles() -> list[Article]:
    """The corpus pages as the pipeline indexes them: extracted, enriched, a new story each."""
    articles = []
    for page in load_pages():
        entry = FeedEntry(feed_id="bench-size", feed_name="Bench size", url=page.url)
        with contextlib.suppress(PermanentError):
            extracted = extract_article(page.html.encode("utf-8", "surrogateescape"), page.url)
            article = build_article(entry, extracted, FETCHED_AT)
            articles.append(article.model_copy(update={"story_id": article.article_id}))
    return enrich_articles(articles, NerModels(NlpSettings()))


def source_bytes(doc: Mapping[str, Any]) -> int:
    """The bytes of a document as the sink sends it (``ElasticsearchSink.write``), kept as ``_source``."""
    return len(json.dumps(doc, ensure_ascii=False).encode())


def field_bytes(doc: Mapping[str, Any]) -> dict[str, int]:
    """Each top-level field's share of the serialised document: ``"key": value, ``."""
    return {key: len(json.dumps({key: value}, ensure_ascii=False).encode()) for key, value in doc.items()}


def count_mapping_fields(properties: Mapping[str, Any]) -> tuple[int, int]:
    """``(leaf fields incl. multi-fields, fields counted against index.mapping.total_fields.limit)``: the limit
    counts object fields as well as leaves and multi-fields."""
    leaves = total = 0
    for spec in properties.values():
        total += 1
        if "properties" in spec:
            sub_leaves, sub_total = count_mapping_fields(spec["properties"])
            leaves, total = leaves + sub_leaves, total + sub_total
            continue
        multi = len(spec.get("fields") or {})
        leaves, total = leaves + 1 + multi, total + multi
    return leaves, total


def percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(docs: Documents, languages: list[str], settings: ElasticsearchSettings, with_store: bool = False
            ) -> dict[str, Any]:
    es = build_es_client(settings)
    prefix = f"bench-size-{uuid.uuid4().hex[:6]}"
    sink = ElasticsearchSink(es, settings.model_copy(update={"index_prefix": prefix}))
    sink.ensure_ready()
    index = index_names(prefix)[0]
    try:
        outcomes = sink.write(docs)
        if (ok := sum(o.ok for o in outcomes)) != len(docs):
            raise SystemExit(f"bench_index_size: {ok} of {len(docs)} documents indexed")
        es.indices.refresh(index=index)
        if (count := int(es.count(index=index)["count"])) != len(docs):
            raise SystemExit(f"bench_index_size: {count} of {len(docs)} documents searchable")
        # A sample read back (a search returns at most index.max_result_window = 10,000 hits).
        back = es.search(index=index, size=min(len(docs), READ_BACK), query={"match_all": {}})["hits"]["hits"]
        sent = {doc_id: doc for doc_id, doc in docs}
        same = sum(hit["_source"] == sent[hit["_id"]] for hit in back)
        mapping = es.indices.get_mapping(index=index)[index]["mappings"]
        store = None
        if with_store:
            es.indices.forcemerge(index=index, max_num_segments=1)
            stats = es.indices.stats(index=index, metric="store")
            store = int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.indices.delete_index_template(name=prefix)
    sizes = [source_bytes(doc) for _, doc in docs]
    per_field: dict[str, list[int]] = defaultdict(list)
    for _, doc in docs:
        for key, size in field_bytes(doc).items():
            per_field[key].append(size)
    mean = statistics.fmean(sizes)
    fields = sorted(((k, sum(v) / len(docs)) for k, v in per_field.items()), key=lambda kv: -kv[1])
    by_language: dict[str, list[int]] = defaultdict(list)
    for language, size in zip(languages, sizes, strict=True):
        by_language[language].append(size)
    leaves, total = count_mapping_fields(mapping.get("properties", {}))
    entities = [len(doc.get("entities") or []) for _, doc in docs]
    text_chars = [len(doc.get("text") or "") for _, doc in docs]
    return {
        "documents": len(docs),
        "read_back": len(back),
        "read_back_identical": same,
        "source_bytes": {"mean": round(mean), "median": round(statistics.median(sizes)),
                         "p90": percentile(sizes, 0.9), "max": max(sizes), "min": min(sizes)},
        "by_language": {lang: {"documents": len(v), "mean": round(statistics.fmean(v))}
                        for lang, v in sorted(by_language.items(), key=lambda kv: -len(kv[1]))},
        "entities_per_document": round(statistics.fmean(entities), 1),
        "text_chars": {"mean": round(statistics.fmean(text_chars)), "median": round(statistics.median(text_chars))},
        "fields": [{"field": k, "mean_bytes": round(v), "share": round(v / mean, 3)} for k, v in fields],
        "mapping": {"leaf_fields": leaves, "total_fields": total, "dynamic": mapping.get("dynamic")},
        "store_bytes_per_document": None if store is None else round(store / len(docs)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1, help="write the corpus this many times (own ids)")
    parser.add_argument("--url", help="a search server to use instead of a spawned osmem")
    parser.add_argument("--mode", choices=["stack", "serverless"], default="stack")
    parser.add_argument("--store", action="store_true",
                        help="also the primaries' store size after a force merge (a real Elasticsearch at --url only: "
                             "osmem keeps everything in memory and its figure means nothing)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if args.store and not args.url:
        parser.error("--store needs --url: the spawned osmem has no on-disk size")
    if not FIXTURES.is_dir():
        raise SystemExit(f"bench_index_size: {FIXTURES} not found; clone the project next to shared/")
    print("bench_index_size: extracting and enriching the corpus…", file=sys.stderr, flush=True)
    articles = corpus_articles()
    docs: Documents = []
    languages: list[str] = []
    for copy in range(args.copies):
        for article in articles:
            doc = to_document(article, FETCHED_AT)
            doc_id = article.article_id if copy == 0 else f"{article.article_id[:14]}c{copy:05d}"
            docs.append((doc_id, {**doc, "article_id": doc_id}))
            languages.append(normalise_language(article.language) or "none")
    with search_server(args.url, args.mode) as (url, mode):
        settings = ElasticsearchSettings(hosts=[url], server_mode="stack" if mode == "stack" else "serverless",
                                         request_timeout=600)
        measured = measure(docs, languages, settings, args.store)
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), **measured}
    if args.json:
        print(json.dumps(result))
        return 0
    s = result["source_bytes"]
    print(f"{result['documents']} documents ({len(articles)} corpus articles × {args.copies}); "
          f"{result['read_back_identical']} of {result['read_back']} read back identical")
    print(f"_source bytes per document: mean {s['mean']:,}, median {s['median']:,}, p90 {s['p90']:,}, "
          f"min {s['min']:,}, max {s['max']:,}")
    print("by language: " + ", ".join(f"{lang} {v['mean']:,} B ({v['documents']} docs)"
                                       for lang, v in result["by_language"].items()))
    print(f"text: mean {result['text_chars']['mean']:,} characters (median {result['text_chars']['median']:,}); "
          f"{result['entities_per_document']} entities per document")
    print("mean bytes per top-level field:")
    for row in result["fields"]:
        print(f"  {row['field']:20} {row['mean_bytes']:8,}  {row['share']:6.1%}")
    m = result["mapping"]
    print(f"mapping: {m['leaf_fields']} leaf fields (multi-fields included), {m['total_fields']} counted against "
          f"index.mapping.total_fields.limit, dynamic={m['dynamic']}")
    if (store := result["store_bytes_per_document"]) is not None:
        print(f"primaries' store after a force merge: {store:,} bytes per document "
              f"({store / s['mean']:.2f} × the mean _source)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
