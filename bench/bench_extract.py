"""Extraction speed, quality and memory: ingest.extract.extract_article against trafilatura alone.

    .venv/bin/python bench/bench_extract.py [--repeat 5] [--pages 10000] [--every 500] [--sequential] [--json]

Corpus: the 55 fundus golden pages and the 13 French trafilatura evaluation pages (68 pages, from
``shared/fixtures/pages``). What runs:

- speed: ``extract_article(html, url)`` vs ``trafilatura.bare_extraction(html, url=url, with_metadata=True,
  deduplicate=False)`` over the whole corpus, interleaved in the same run (one round = one pass of each, the
  order swapped every round; best of ``--repeat`` rounds per side) because this machine is shared and noisy.
  Target (issue): ours takes at most 1.2× trafilatura's time;
- quality: ``ingest.eval.extraction.score`` of both extractors on each golden set, side by side (trafilatura's document
  mapped to the same fields: its title, text, ``split_authors(author)`` and the day of its date);
- memory: each extractor in a fresh process (``--child``, this script re-invoked) runs over the corpus
  cyclically for ``--pages`` pages; every ``--every`` pages it runs ``gc.collect()`` and samples VmRSS
  (/proc/self/status), ``ru_maxrss`` and the number of objects the collector tracks. Summary: RSS after the
  first sample past one full cycle over the corpus (the warm-up) vs at the end, and the least-squares slope of
  RSS over the samples from the warm-up on, in KB per 1,000 pages. Both children run at the same time (2 cores,
  one each) unless ``--sequential``; the output says which.

``--pages 1000 --repeat 2`` takes under a minute and a half; the default 10,000 pages about 10 minutes (both
children concurrently, on 2 cores). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from ingest.dates import parse_iso_datetime
from ingest.errors import PermanentError
from ingest.eval.extraction import Fields, GoldPage, fields_of, fundus_pages, score, trafilatura_pages

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
TARGET_RATIO = 1.2  # ours / trafilatura time, at most
KINDS = ("ours", "trafilatura")


def golden_sets() -> dict[str, list[GoldPage]]:
    return {"fundus": fundus_pages(FIXTURES / "pages" / "fundus"),
            "trafilatura_fr": trafilatura_pages(FIXTURES / "pages" / "trafilatura_fr")}


# ---------------------------------------------------------------- the two extractors


def run_ours(html: bytes, url: str) -> Any:
    from ingest.extract import extract_article

    return extract_article(html, url)


def run_trafilatura(html: bytes, url: str) -> Any:
    import trafilatura

    return trafilatura.bare_extraction(html, url=url, with_metadata=True, deduplicate=False)


RUNNERS: dict[str, Callable[[bytes, str], Any]] = {"ours": run_ours, "trafilatura": run_trafilatura}


def ours_fields(html: bytes, url: str) -> Fields:
    return fields_of(run_ours(html, url))


def trafilatura_fields(html: bytes, url: str) -> Fields:
    from ingest.extract import split_authors

    doc = run_trafilatura(html, url)
    if doc is None:  # trafilatura found nothing: scored as a refusal, like extract_article's PermanentError
        raise PermanentError("extraction_empty", url, "trafilatura returned no document")
    published = parse_iso_datetime(doc.date, utc=False)
    return Fields(doc.title or "", doc.text or "", split_authors(doc.author),
                  published.date() if published else None)


# ---------------------------------------------------------------- speed


def one_pass(kind: str, pages: Sequence[GoldPage]) -> tuple[float, int]:
    """Seconds for one pass of ``kind`` over ``pages``, and how many pages it refused (a refusal still costs)."""
    run = RUNNERS[kind]
    refused = 0
    start = time.perf_counter()
    for page in pages:
        try:
            run(page.html, page.url)
        except PermanentError:
            refused += 1
    return time.perf_counter() - start, refused


def bench_speed(pages: Sequence[GoldPage], repeat: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    refused: dict[str, int] = {}
    for kind in KINDS:  # a warm-up pass of each side (imports, lazily built caches), not counted
        one_pass(kind, pages)
    for round_ in range(repeat):
        for kind in KINDS if round_ % 2 == 0 else reversed(KINDS):
            seconds, refused[kind] = one_pass(kind, pages)
            times[kind].append(seconds)
    best = {kind: min(t) for kind, t in times.items()}
    return {
        "pages": len(pages),
        "rounds": repeat,
        "best_s": {k: round(v, 3) for k, v in best.items()},
        "median_s": {k: round(median(t), 3) for k, t in times.items()},
        "rounds_s": {k: [round(x, 3) for x in t] for k, t in times.items()},
        "pages_per_s": {k: round(len(pages) / v, 1) for k, v in best.items()},
        "refused": refused,
        "time_ratio_ours_over_trafilatura": round(best["ours"] / best["trafilatura"], 3),
        "median_time_ratio": round(median(times["ours"]) / median(times["trafilatura"]), 3),
    }


# ---------------------------------------------------------------- quality


def bench_quality(sets: dict[str, list[GoldPage]]) -> dict[str, dict[str, dict[str, float]]]:
    extractors = {"ours": ours_fields, "trafilatura": trafilatura_fields}
    return {name: {kind: score(pages, fn).as_dict() for kind, fn in extractors.items()}
            for name, pages in sets.items()}


# ---------------------------------------------------------------- memory (child side)


def proc_status_kb(*keys: str) -> dict[str, int]:
    """Fields of /proc/self/status in kB (VmRSS: resident now; VmHWM: this process image's resident peak)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            found[key] = int(value.split()[0])
    return found


def sample(done: int, started: float) -> dict[str, Any]:
    gc.collect()
    status = proc_status_kb("VmRSS", "VmHWM")
    # ru_maxrss survives execve on Linux: it also holds the parent's peak at the time it spawned this child.
    return {"pages": done, "rss_kb": status["VmRSS"], "hwm_kb": status["VmHWM"],
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "gc_objects": len(gc.get_objects()), "elapsed_s": round(time.perf_counter() - started, 2)}


def child(kind: str, total: int, every: int) -> None:
    """Run ``kind`` over the corpus cyclically for ``total`` pages; one JSON sample per line on stdout."""
    pages = [p for ps in golden_sets().values() for p in ps]
    run = RUNNERS[kind]
    run(pages[0].html, pages[0].url)  # imports done before the first sample; counted as page 1 of the run
    started = time.perf_counter()
    refused = 0

    def emit(done: int) -> None:
        row = sample(done, started) | {"refused": refused}
        print(json.dumps(row), flush=True)
        print(f"bench[{kind}]: {done} pages  RSS {row['rss_kb'] / 1024:.1f} MB  {row['elapsed_s']:.0f} s",
              file=sys.stderr, flush=True)

    emit(0)
    for done in range(1, total + 1):
        page = pages[(done - 1) % len(pages)]
        try:
            run(page.html, page.url)
        except PermanentError:
            refused += 1
        if done % every == 0 or done == total:
            emit(done)


# ---------------------------------------------------------------- memory (parent side)


def start_child(kind: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", kind,
                             "--pages", str(args.pages), "--every", str(args.every)],
                            stdout=subprocess.PIPE, text=True)


def collect(kind: str, proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"bench: the {kind} child failed with status {proc.returncode}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def slope(points: Sequence[tuple[float, float]]) -> tuple[float, float | None] | None:
    """Least-squares slope of y over x and its standard error (None with two points); None with fewer than two
    distinct x. RSS jumps by several MB from one sample to the next: read the slope against its error."""
    n = len(points)
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    if n < 3:
        return b, None
    residuals = sum((y - my - b * (x - mx)) ** 2 for x, y in points)
    return b, (residuals / (n - 2) / sxx) ** 0.5


def per_1000(fit: tuple[float, float | None] | None, index: int) -> float | None:
    value = None if fit is None else fit[index]
    return None if value is None else round(value * 1000, 1)


def summarise(rows: list[dict[str, Any]], corpus: int) -> dict[str, Any]:
    warm = next((r for r in rows if r["pages"] >= corpus), rows[-1])
    after = [r for r in rows if r["pages"] >= warm["pages"]]
    end = rows[-1]
    rss = slope([(r["pages"], r["rss_kb"]) for r in after])
    objects = slope([(r["pages"], r["gc_objects"]) for r in after])
    return {
        "start_rss_mb": round(rows[0]["rss_kb"] / 1024, 1),
        "warmup_pages": warm["pages"],
        "warmup_rss_mb": round(warm["rss_kb"] / 1024, 1),
        "end_pages": end["pages"],
        "end_rss_mb": round(end["rss_kb"] / 1024, 1),
        "growth_after_warmup_mb": round((end["rss_kb"] - warm["rss_kb"]) / 1024, 1),
        "min_rss_after_warmup_mb": round(min(r["rss_kb"] for r in after) / 1024, 1),
        "max_rss_after_warmup_mb": round(max(r["rss_kb"] for r in after) / 1024, 1),
        "slope_kb_per_1000_pages": per_1000(rss, 0),
        "slope_se_kb_per_1000_pages": per_1000(rss, 1),
        "warmup_hwm_mb": round(warm["hwm_kb"] / 1024, 1),
        "peak_rss_mb": round(end["hwm_kb"] / 1024, 1),
        "ru_maxrss_mb": round(end["maxrss_kb"] / 1024, 1),
        "gc_objects_warmup": warm["gc_objects"],
        "gc_objects_end": end["gc_objects"],
        "gc_objects_slope_per_1000_pages": per_1000(objects, 0),
        "pages_per_s": round(end["pages"] / end["elapsed_s"], 1) if end["elapsed_s"] else None,
        "refused": end["refused"],
    }


def bench_memory(args: argparse.Namespace, corpus: int) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {}
    if args.sequential:
        for kind in KINDS:
            rows[kind] = collect(kind, start_child(kind, args))
    else:
        procs = {kind: start_child(kind, args) for kind in KINDS}
        for kind, proc in procs.items():
            rows[kind] = collect(kind, proc)
    return {"concurrent": not args.sequential, "pages": args.pages, "every": args.every, "samples": rows,
            "summary": {kind: summarise(r, corpus) for kind, r in rows.items()}}


# ---------------------------------------------------------------- output


def print_figures(r: dict[str, Any]) -> None:
    s = r["speed"]
    print(f"when {r['when']}   corpus {s['pages']} pages ({r['corpus']})")
    print(f"speed, best of {s['rounds']} interleaved rounds (one pass over the corpus per side per round):")
    for kind in KINDS:
        print(f"  {kind:12} {s['pages_per_s'][kind]:6.1f} pages/s   best {s['best_s'][kind]:.3f} s  "
              f"median {s['median_s'][kind]:.3f} s  rounds {s['rounds_s'][kind]}  refused {s['refused'][kind]}")
    ratio = s["time_ratio_ours_over_trafilatura"]
    print(f"  time ratio ours/trafilatura = {ratio:.3f} (best), {s['median_time_ratio']:.3f} (median); "
          f"target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    print("quality (ingest.eval.extraction.score):")
    for name, by_kind in r["quality"].items():
        for kind, scores in by_kind.items():
            print(f"  {name:15} {kind:12} {scores}")
    m = r["memory"]
    how = "concurrently, one child per core" if m["concurrent"] else "one after the other"
    print(f"memory: {m['pages']} pages per extractor, fresh child processes run {how}; "
          f"gc.collect() then a sample every {m['every']} pages")
    print(f"  {'pages':>7}  " + "  ".join(f"{k + ' RSS MB':>16} {'objects':>8}" for k in KINDS))
    by_pages = {kind: {row["pages"]: row for row in rows} for kind, rows in m["samples"].items()}
    for pages in sorted(set().union(*by_pages.values())):
        cells = []
        for kind in KINDS:
            row = by_pages[kind].get(pages)
            cells.append(f"{row['rss_kb'] / 1024:16.1f} {row['gc_objects']:8d}" if row else f"{'-':>16} {'-':>8}")
        print(f"  {pages:7d}  " + "  ".join(cells))
    for kind, t in m["summary"].items():
        print(f"  {kind:12} RSS {t['start_rss_mb']} MB at 0 → {t['warmup_rss_mb']} MB after warm-up "
              f"({t['warmup_pages']} pages) → {t['end_rss_mb']} MB at {t['end_pages']}: "
              f"{t['growth_after_warmup_mb']:+} MB after warm-up")
        print(f"  {'':12} after warm-up: RSS {t['min_rss_after_warmup_mb']}-{t['max_rss_after_warmup_mb']} MB, "
              f"slope {t['slope_kb_per_1000_pages']} ± {t['slope_se_kb_per_1000_pages']} KB/1000 pages "
              f"(least squares ± 1 standard error)")
        print(f"  {'':12} peak: VmHWM {t['warmup_hwm_mb']} MB after warm-up → {t['peak_rss_mb']} MB at the end, "
              f"ru_maxrss {t['ru_maxrss_mb']} MB; gc objects "
              f"{t['gc_objects_warmup']} → {t['gc_objects_end']} ({t['gc_objects_slope_per_1000_pages']}/1000 pages); "
              f"{t['pages_per_s']} pages/s; refused {t['refused']}")
    print("  (ru_maxrss survives execve on Linux, so it is at least the parent's peak when it spawned the child; "
          "VmHWM is the child's own)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved speed rounds (best of N per side)")
    parser.add_argument("--pages", type=int, default=10_000, help="pages per extractor in the memory run")
    parser.add_argument("--every", type=int, default=500, help="pages between two memory samples")
    parser.add_argument("--sequential", action="store_true", help="run the two memory children one after the other")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"bench: {FIXTURES} not found; clone the project next to shared/")
    if args.repeat < 1 or args.pages < 1 or args.every < 1:
        parser.error("--repeat, --pages and --every must be positive")
    if args.child:
        child(args.child, args.pages, args.every)
        return
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    sets = golden_sets()
    pages = [p for ps in sets.values() for p in ps]
    results["corpus"] = {name: len(ps) for name, ps in sets.items()}
    print("bench: quality…", file=sys.stderr, flush=True)
    results["quality"] = bench_quality(sets)
    print(f"bench: speed, {args.repeat} rounds…", file=sys.stderr, flush=True)
    results["speed"] = bench_speed(pages, args.repeat)
    print(f"bench: memory, {args.pages} pages per extractor…", file=sys.stderr, flush=True)
    results["memory"] = bench_memory(args, len(pages))
    print_figures(results)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
