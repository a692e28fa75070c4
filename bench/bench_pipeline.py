"""Stage costs against baselines measured in the same run (this machine is shared and noisy: read the ratios).

    .venv/bin/python bench/bench_pipeline.py [--repeat N]

- extract: ingest.extract.extract_article vs trafilatura.bare_extraction alone, on the fundus fixture pages;
- ner:     ingest.enrich.find_entities (NER components only) vs bare nlp.pipe with the full model;
- index:   ingest ElasticsearchSink.write vs elasticsearch.helpers.bulk, same documents, osmem server.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.errors import PermanentError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load_pages() -> list[tuple[str, bytes]]:
    index = json.loads((FIXTURES / "pages" / "fundus" / "index.json").read_text())
    return [(row["url"], gzip.decompress((FIXTURES / "pages" / "fundus" / row["html"]).read_bytes())) for row in index]


def bench_extract(pages: list[tuple[str, bytes]], repeat: int) -> dict[str, float]:
    import trafilatura

    from ingest.extract import extract_article

    def baseline() -> None:
        for url, html in pages:
            trafilatura.bare_extraction(html, url=url, with_metadata=True, deduplicate=False)

    def ours() -> None:
        for url, html in pages:
            with contextlib.suppress(PermanentError):  # a rejected page still costs its time
                extract_article(html, url)

    base, mine = best_of(repeat, baseline), best_of(repeat, ours)
    return {"pages": len(pages), "baseline_pages_per_s": len(pages) / base, "ingest_pages_per_s": len(pages) / mine,
            "ratio": base / mine}


def bench_ner(texts: list[str], repeat: int) -> dict[str, float]:
    import spacy

    from ingest.config import NlpSettings
    from ingest.enrich import NerModels, find_entities

    settings = NlpSettings()
    full = spacy.load(settings.model_fr)
    models = NerModels(settings)
    models.get("fr")

    def baseline() -> None:
        for doc in full.pipe(texts, batch_size=16):
            _ = doc.ents

    def ours() -> None:
        find_entities(texts, "fr", models)

    base, mine = best_of(repeat, baseline), best_of(repeat, ours)
    chars = sum(len(t) for t in texts)
    return {"texts": len(texts), "chars": chars, "baseline_texts_per_s": len(texts) / base,
            "ingest_texts_per_s": len(texts) / mine, "ratio": base / mine}


def bench_index(docs: int, repeat: int) -> dict[str, float]:
    from elasticsearch import helpers

    from ingest.config import ElasticsearchSettings
    from ingest.embedded.services import free_port, spawn_search
    from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client

    port = free_port()
    proc = spawn_search(port)
    try:
        settings = ElasticsearchSettings(hosts=[f"http://127.0.0.1:{port}"], server_mode="serverless",
                                         index_prefix="bench")
        es = build_es_client(settings)
        sink = ElasticsearchSink(es, settings)
        sink.ensure_ready()
        body = {"title": "Titre", "text": "Une attaque de drones a visé l'usine Kupol à Izhevsk. " * 20,
                "language": "fr", "persons": ["Vladimir Poutine"], "schema_version": 1}
        documents = [(f"doc{i}", {**body, "article_id": f"doc{i}"}) for i in range(docs)]

        def baseline() -> None:
            actions = ({"_index": sink.write_alias, "_id": i, "_source": d} for i, d in documents)
            helpers.bulk(es, actions, chunk_size=100, refresh="wait_for")

        def ours() -> None:
            for start in range(0, len(documents), 100):
                sink.write(documents[start:start + 100])

        base, mine = best_of(repeat, baseline), best_of(repeat, ours)
    finally:
        proc.terminate()
    return {"docs": docs, "baseline_docs_per_s": docs / base, "ingest_docs_per_s": docs / mine, "ratio": base / mine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"bench: {FIXTURES} not found; clone the project next to shared/")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    pages = load_pages()
    results: dict[str, Any] = {"when": started}
    results["extract"] = bench_extract(pages, args.repeat)
    texts = _french_texts(pages)
    results["ner"] = bench_ner(texts, args.repeat)
    results["index"] = bench_index(args.docs, args.repeat)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for stage in ("extract", "ner", "index"):
        r = results[stage]
        rates = {k: round(v, 1) for k, v in r.items() if k.endswith("_per_s")}
        print(f"{stage:8} ratio ingest/baseline = {r['ratio']:.2f}   {rates}")
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB")
    print(json.dumps(results, indent=2))


def _french_texts(pages: list[tuple[str, bytes]]) -> list[str]:
    from ingest.extract import extract_article

    texts = [(FIXTURES / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")]
    for url, html in pages:
        try:
            article = extract_article(html, url)
        except PermanentError:
            continue
        if article.language == "fr":
            texts.append(article.text)
    return texts * 4


if __name__ == "__main__":
    main()
