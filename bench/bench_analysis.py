"""What per-language analysis costs at index time: multi-fields against per-language fields.

    .venv/bin/python bench/bench_analysis.py [--url http://127.0.0.1:9200 --mode stack] [--repeat 3] [--json]

The issue leaves the layout to a measured choice. Two layouts of the same analysers (index_template.json):

- ``per-language`` (what the template does): ``title``, ``summary`` and ``text`` analysed language-neutral
  (folded) for every document, plus a copy under ``i18n.fr.*`` or ``i18n.en.*`` analysed for the document's
  language (``ingest.index.language_fields``); other languages get no copy.
- ``multi``: ``title``, ``summary`` and ``text`` with ``.fr`` and ``.en`` multi-fields, so every document is
  analysed three ways whatever its language, and nothing is sent twice.

Documents: the SemEval-2022 Task 8 articles in ``shared/fixtures/dedup`` (English, German, Spanish, French), each
text with its language, indexed in bulk requests of 200, interleaved rounds, best of ``--repeat`` per layout.
Prints documents per second for each layout, the ratio, and the request bytes each sends. The search server is
an osmem spawned on a free port unless ``--url`` names one.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from ingest.config import ElasticsearchSettings
from ingest.embedded.services import search_server
from ingest.index import ANALYSED_FIELDS, ANALYSED_LANGUAGES, language_fields
from ingest.search_index.template import index_template
from ingest.stores.elasticsearch import build_es_client

ROOT = Path(__file__).resolve().parents[1]
SEMEVAL = ROOT.parent / "shared" / "fixtures" / "dedup" / "semeval2022_task8_dev.jsonl"


def articles() -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for line in SEMEVAL.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        for side in ("1", "2"):
            text = str(pair[f"text{side}"]).strip()
            if text and text not in seen:
                seen.add(text)
                title, _, body = text.partition(". ")
                out.append({"title": title[:300], "summary": None, "text": body, "language": pair[f"lang{side}"]})
    return out


def layouts(prefix: str) -> dict[str, dict[str, Any]]:
    """The two index bodies (settings + mappings) of the same analysers."""
    template = index_template(prefix)["template"]
    props = template["mappings"]["properties"]
    per_language = {"settings": template["settings"], "mappings": {"properties": {
        **{f: props[f] for f in (*ANALYSED_FIELDS, "i18n")}, "language": {"type": "keyword"}}}}
    multi = copy.deepcopy(per_language)
    multi_props = multi["mappings"]["properties"]
    copies = multi_props.pop("i18n")["properties"]
    for field in ANALYSED_FIELDS:
        multi_props[field]["fields"] = {lang: copies[lang]["properties"][field] for lang in ANALYSED_LANGUAGES}
    return {"per-language": per_language, "multi": multi}


def documents(layout: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if layout == "multi":
        return docs
    return [{**doc, "i18n": language_fields(doc["language"], doc)} for doc in docs]


def index_round(es: Elasticsearch, name: str, docs: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    actions = ({"_index": name, "_id": str(i), "_source": d} for i, d in enumerate(docs))
    _, errors = helpers.bulk(es, actions, chunk_size=200, raise_on_error=False)
    if errors:
        raise SystemExit(f"bench_analysis: {len(errors)} documents refused, first: {errors[0]}")
    return len(docs) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a search server to use instead of a spawned osmem")
    parser.add_argument("--mode", choices=["stack", "serverless"], default="stack")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with search_server(args.url, args.mode) as (url, mode):
        es = build_es_client(ElasticsearchSettings(hosts=[url], server_mode=mode))
        docs = articles()
        bodies = layouts("bench")
        best: dict[str, float] = {}
        sizes = {name: sum(len(json.dumps(d)) for d in documents(name, docs)) for name in bodies}
        for round_ in range(args.repeat):
            order = list(bodies) if round_ % 2 == 0 else list(reversed(bodies))
            for name in order:
                index = f"bench-analysis-{name}-{uuid.uuid4().hex[:6]}"
                es.indices.create(index=index, **bodies[name])
                rate = index_round(es, index, documents(name, docs))
                es.indices.delete(index=index)
                best[name] = max(best.get(name, 0.0), rate)
        result = {
            "documents": len(docs),
            "languages": sorted({d["language"] for d in docs}),
            "docs_per_s": {k: round(v, 1) for k, v in best.items()},
            "per_language_over_multi": round(best["per-language"] / best["multi"], 3),
            "source_bytes": sizes,
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['documents']} documents ({', '.join(result['languages'])}), best of {args.repeat}")
            for name, rate in result["docs_per_s"].items():
                print(f"  {name:13} {rate:8.1f} docs/s   {sizes[name] / 1e6:6.2f} MB sent")
            print(f"  per-language ÷ multi throughput: {result['per_language_over_multi']}")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
