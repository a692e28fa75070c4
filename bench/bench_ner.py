"""Entity enrichment speed and memory: ``ingest.enrich.analyse_texts`` against bare spaCy ``nlp.pipe``.

    .venv/bin/python bench/bench_ner.py [--quick] [--repeat 5] [--articles 10000] [--json]

Texts: the French article bodies (title + gold body) of the fundus golden pages and the seed article, from
``shared/fixtures`` (four times over for the speed rounds). What runs:

- speed, interleaved in the same run (one round = one pass of each side over all texts, the order rotated
  every round, best of ``--repeat`` rounds per side), same model (``INGEST_NLP__MODEL_FR``), same texts:
  ``full``: bare ``nlp.pipe`` of the model as installed (all components), reading ``doc.ents``;
  ``ner-only``: bare ``nlp.pipe`` of the model loaded with only ``ner`` (what a careful user would run);
  ``ours``: ``analyse_texts`` (NER, context cues, canonical entities, alias table, gazetteer, memory zone).
  Target (issue): ours at least 90% of bare ``nlp.pipe`` throughput; both ratios are printed.
- memory: a fresh process (``--child``) enriches ``--articles`` articles in batches of 25 (the pipeline's batch
  size), the texts cycled, each article made unique by a sentence of new names (new strings for the vocab, as
  real news brings); RSS (VmRSS) sampled every 500 articles after ``gc.collect()``; peak = VmHWM (the
  process's own high-water mark; ``ru_maxrss`` would include the parent's, as it survives ``execve``).
  Target: peak under 1.5 GB per worker.

``--quick``: 2 rounds and 1,000 articles (about a minute). The default takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.config import NlpSettings
from ingest.enrich import NerModels, analyse_texts

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
TARGET_RATIO = 0.9
TARGET_PEAK_MB = 1536
BATCH = 25


def french_texts() -> list[str]:
    from ingest.eval.extraction import fundus_pages

    texts = [f"{p.title}\n\n{p.body}" for p in fundus_pages(FIXTURES / "pages" / "fundus") if p.lang == "fr"]
    texts.append((FIXTURES / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8"))
    return [t for t in texts if t.strip()]


def bench_speed(texts: list[str], repeat: int) -> dict[str, Any]:
    import spacy

    settings = NlpSettings()
    full = spacy.load(settings.model_fr)
    ner_only = spacy.load(settings.model_fr, exclude=[p for p in full.pipe_names if p != "ner"])
    models = NerModels(settings)
    analyse_texts(texts[:2], "fr", models)  # load the model, aliases and gazetteer outside the timing

    def bare(nlp: Any) -> Callable[[], None]:
        def run() -> None:
            for doc in nlp.pipe(texts, batch_size=settings.batch_size):
                _ = doc.ents
        return run

    sides: dict[str, Callable[[], None]] = {
        "full": bare(full), "ner-only": bare(ner_only), "ours": lambda: analyse_texts(texts, "fr", models)
    }
    best = {name: float("inf") for name in sides}
    names = list(sides)
    for round_ in range(repeat):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            started = time.perf_counter()
            sides[name]()
            best[name] = min(best[name], time.perf_counter() - started)
    chars = sum(len(t) for t in texts)
    return {
        "model": models.label("fr"), "texts": len(texts), "chars": chars, "rounds": repeat,
        "texts_per_s": {name: round(len(texts) / s, 1) for name, s in best.items()},
        "ratio_vs_full": round(best["full"] / best["ours"], 3),
        "ratio_vs_ner_only": round(best["ner-only"] / best["ours"], 3),
    }


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def child(articles: int, every: int) -> dict[str, Any]:
    texts = french_texts()
    models = NerModels(NlpSettings())
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    done = 0
    while done < articles:
        batch = [
            f"{texts[(done + k) % len(texts)]}\nLe maire Zorglub{done + k} a reçu Blorvak{done + k} à "
            f"Quimperlé{done + k} avec la société Krampf{done + k}."
            for k in range(min(BATCH, articles - done))
        ]
        analyse_texts(batch, "fr", models)
        done += len(batch)
        if done % every == 0 or done == articles:
            gc.collect()
            samples.append((done, round(_rss_mb(), 1)))
    elapsed = time.perf_counter() - started
    return {"articles": articles, "seconds": round(elapsed, 1), "articles_per_s": round(articles / elapsed, 1),
            # VmHWM, not ru_maxrss: ru_maxrss survives execve, so it would report the parent's peak.
            "peak_mb": round(_status_mb("VmHWM"), 1), "rss_samples": samples}


def bench_memory(articles: int) -> dict[str, Any]:
    every = 500 if articles >= 2000 else 100
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--articles", str(articles), "--every", str(every)],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    samples = result["rss_samples"]
    warm = samples[min(1, len(samples) - 1)]
    result["rss_after_warmup_mb"], result["rss_end_mb"] = warm[1], samples[-1][1]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1,000 articles")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.articles, args.every)))
        return 0
    if args.quick:
        args.repeat, args.articles = 2, 1000
    texts = french_texts() * 4  # 24 texts, about 140,000 characters: enough for steady timings
    speed = bench_speed(texts, args.repeat)
    memory = bench_memory(args.articles)
    if args.json:
        print(json.dumps({"speed": speed, "memory": memory}, indent=2))
        return 0
    print(f"model {speed['model']}: {speed['texts']} French texts, {speed['chars']} characters, "
          f"best of {speed['rounds']} interleaved rounds")
    for name, rate in speed["texts_per_s"].items():
        print(f"  {name:9} {rate:8.1f} texts/s")
    print(f"  ours / bare nlp.pipe (all components): {speed['ratio_vs_full']:.3f}; "
          f"ours / bare nlp.pipe (ner only): {speed['ratio_vs_ner_only']:.3f} (target >= {TARGET_RATIO})")
    print(f"memory over {memory['articles']} articles in one process: peak {memory['peak_mb']} MB "
          f"(target < {TARGET_PEAK_MB}); RSS {memory['rss_after_warmup_mb']} MB after warm-up, "
          f"{memory['rss_end_mb']} MB at the end; {memory['articles_per_s']} articles/s")
    print(f"  RSS samples (articles, MB): {memory['rss_samples']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
