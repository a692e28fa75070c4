"""Extraction errors, field by field, on a fit half and a held-out half of the dev pages split by site.

    .venv/bin/python bench/eval_extract.py [--explain] [--half fit|held-out|all] [--baseline REF] [--repeat 3]

Corpus: the 55 fundus golden pages and the 13 French trafilatura evaluation pages (``shared/fixtures/pages``).
Each page goes to one half by its site: the fundus publisher (``NineNews`` for both of its domains), else the
URL's host without ``www.``; a site whose SHA-256 first byte is even is in the **fit** half, odd in the
**held-out** half. Rules are developed looking only at the fit half's misses (``--explain --half fit``); the
held-out half says whether they carry to sites they were not written for. ``--half fit`` prints nothing of
the held-out half (its scores, changed pages and misses), so that it can stay unseen until a change is done.

What is printed:

- per half and field: title exact after normalisation (and on the pages whose gold headline is printed in the
  page body), authors token F1, publication day, body token F1 (fundus), snippets found / boilerplate absent
  (trafilatura set);
- ``--explain``: every miss, per field, with the page, what the gold says and what was found (a body miss is a
  page under ``--body-floor`` token F1: its lost and extra lines);
- ``--baseline REF``: the same for the code at the git revision ``REF`` (its ``src/`` exported to a temporary
  directory), side by side, with the pages a change fixed or broke; and CPU seconds per page of
  ``extract_article`` for both, measured in the same run: one worker process per version, their passes
  interleaved (the order swapped every round), best of ``--repeat`` passes each.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
HALVES = ("fit", "held-out")
FIELDS = ("title", "authors", "date", "body", "snippets")


# ---------------------------------------------------------------- worker: runs one version of ``ingest``


def _pages() -> list[Any]:
    from ingest.eval.extraction import fundus_pages, trafilatura_pages

    return [*fundus_pages(FIXTURES / "pages" / "fundus"), *trafilatura_pages(FIXTURES / "pages" / "trafilatura_fr")]


def worker() -> None:
    """Read commands on stdin, answer one JSON line each: ``fields`` (every page's extraction) or ``time``
    (CPU seconds of one pass of ``extract_article`` over every page)."""
    from ingest.errors import PermanentError
    from ingest.extract import extract_article

    pages = _pages()
    for command in sys.stdin:
        command = command.strip()
        if command == "fields":
            rows = []
            for page in pages:
                try:
                    got = extract_article(page.html, page.url)
                except PermanentError as e:
                    rows.append({"name": page.name, "error": e.reason})
                    continue
                day = got.published_at.date().isoformat() if got.published_at else None
                rows.append({"name": page.name, "title": got.title or "", "text": got.text,
                             "authors": list(got.authors), "published": day})
            print(json.dumps(rows), flush=True)
        elif command == "time":
            start = time.process_time()
            for page in pages:
                with contextlib.suppress(PermanentError):
                    extract_article(page.html, page.url)
            print(json.dumps({"cpu_s": time.process_time() - start, "pages": len(pages)}), flush=True)
        else:
            return


class Worker:
    def __init__(self, src: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.src = src
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"eval: the worker for {self.src} stopped (status {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def export_src(ref: str, into: Path) -> Path:
    """``src/`` of the git revision ``ref``, written under ``into``."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


# ---------------------------------------------------------------- halves and scores


def site_of(page: Any) -> str:
    """The site a page belongs to: its fundus publisher, else its host."""
    if page.name.endswith(".html.gz"):
        return page.name.split("/")[-1].rsplit("_", 3)[0]
    return (urlsplit(page.url).hostname or "").removeprefix("www.")


def half_of(site: str) -> str:
    return HALVES[hashlib.sha256(site.encode("utf-8")).digest()[0] % 2]


def scores_of(pages: Sequence[Any], rows: Sequence[dict[str, Any]]) -> Any:
    from ingest.eval.extraction import Fields, PageScore, Scores

    scored = []
    for page, row in zip(pages, rows, strict=True):
        if "error" in row:
            scored.append(PageScore(page, None, row["error"]))
            continue
        day = date.fromisoformat(row["published"]) if row["published"] else None
        scored.append(PageScore(page, Fields(row["title"], row["text"], tuple(row["authors"]), day)))
    return Scores(scored)


def summary(scores: Any) -> dict[str, float]:
    d = scores.as_dict()
    return {"pages": d["pages"], "title_exact": d["title_exact"], "title_exact_visible": d["title_exact_visible"],
            "authors_f1": d["authors_f1"], "day_correct": d["day_correct"], "body_f1": d["body_f1"],
            "with_recall": d["with_recall"], "without_absence": d["without_absence"]}


def misses(p: Any, body_floor: float) -> dict[str, tuple[str, str]]:
    """The fields ``p`` (a PageScore) gets wrong: field → (expected, found)."""
    got = p.got
    found: dict[str, tuple[str, str]] = {}
    if got is None:
        return {"refused": ("an extraction", p.error or "")}
    if p.title_exact is False:
        shown = "" if p.title_exact_visible is None else "  [gold printed on the page]"
        found["title"] = (f"{p.page.title!r}{shown}", repr(got.title))
    if p.authors_f1 is not None and p.authors_f1 < 1.0:
        found["authors"] = (repr(list(p.page.authors)), f"{list(got.authors)!r}  (F1 {p.authors_f1:.2f})")
    if p.day_correct is False:
        found["date"] = (str(p.page.published), str(got.published))
    if p.body_f1 is not None and p.body_f1 < body_floor:
        gold_lines = [line.strip() for line in (p.page.body or "").split("\n") if line.strip()]
        got_lines = [line.strip() for line in got.text.split("\n") if line.strip()]
        lost = [line for line in gold_lines if line not in got.text]
        extra = [line for line in got_lines if line not in (p.page.body or "")]
        found["body"] = (f"F1 {p.body_f1:.3f}; lost {len(lost)} gold lines: " + " ‖ ".join(_cut(x) for x in lost[:6]),
                         f"extra {len(extra)} lines: " + " ‖ ".join(_cut(x) for x in extra[:6]))
    wrong = [s for s, ok in zip(p.page.with_snippets, p.with_found, strict=True) if not ok]
    wrong += [f"(boilerplate) {s}" for s, ok in zip(p.page.without_snippets, p.without_absent, strict=True) if not ok]
    if wrong:
        found["snippets"] = (" ‖ ".join(_cut(s) for s in wrong), "missing / present")
    return found


def _cut(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- output


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    keys = ("title_exact", "title_exact_visible", "authors_f1", "day_correct", "body_f1", "with_recall",
            "without_absence")
    print(f"  {'half':9} {'version':9} {'pages':>5} " + " ".join(f"{k:>19}" for k in keys))
    for half, by_version in results.items():
        for version, s in by_version.items():
            print(f"  {half:9} {version:9} {s['pages']:5d} " + " ".join(f"{s[k]:19.4f}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--explain", action="store_true", help="list every miss per field")
    parser.add_argument("--half", choices=(*HALVES, "all"), default="all",
                        help="the half whose scores, changed pages and misses are printed (fit: the held-out "
                             "half's figures stay unseen while rules are written)")
    parser.add_argument("--baseline", metavar="REF", help="also run the code at this git revision, side by side")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per version (best of N); 0: no timing")
    parser.add_argument("--body-floor", type=float, default=0.95, help="a body under this token F1 is a miss")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if not FIXTURES.is_dir():
        raise SystemExit(f"eval: {FIXTURES} not found; clone the project next to shared/")
    sys.path.insert(0, str(ROOT / "src"))
    pages = _pages()
    sites = {page.name: site_of(page) for page in pages}
    halves = {name: half_of(site) for name, site in sites.items()}

    with tempfile.TemporaryDirectory(prefix="eval_extract_") as tmp:
        workers = {"current": Worker(ROOT / "src")}
        if args.baseline:
            workers = {"baseline": Worker(export_src(args.baseline, Path(tmp))), **workers}
        print(f"eval: extracting {len(pages)} pages with {', '.join(workers)}…", file=sys.stderr, flush=True)
        rows = {version: w.ask("fields") for version, w in workers.items()}
        cpu: dict[str, list[float]] = {version: [] for version in workers}
        for round_ in range(args.repeat):
            order = list(workers) if round_ % 2 == 0 else list(reversed(workers))
            for version in order:
                cpu[version].append(workers[version].ask("time")["cpu_s"])
        for w in workers.values():
            w.close()

    by_version = {version: scores_of(pages, r) for version, r in rows.items()}
    results: dict[str, dict[str, dict[str, float]]] = {}
    from ingest.eval.extraction import Scores

    shown_halves = HALVES if args.half == "all" else (args.half,)
    for half in (*shown_halves, "all") if args.half == "all" else shown_halves:
        results[half] = {}
        for version, scores in by_version.items():
            kept = [p for p in scores.pages if half == "all" or halves[p.page.name] == half]
            results[half][version] = summary(Scores(kept))

    for half in shown_halves:
        names = sorted({sites[n] for n, h in halves.items() if h == half})
        count = sum(h == half for h in halves.values())
        print(f"{half} half: {count} pages, {len(names)} sites: {', '.join(names)}")
    print("scores (title exact after normalisation; authors, body: token F1; day: publication day correct):")
    print_table(results)
    if args.repeat:
        print(f"CPU per page of extract_article, best of {args.repeat} interleaved passes over {len(pages)} pages:")
        for version, times in cpu.items():
            print(f"  {version:9} {1000 * min(times) / len(pages):7.1f} ms/page   passes "
                  + " ".join(f"{t:.2f}s" for t in times))

    current = by_version["current"]
    if args.baseline:
        print(f"pages whose fields changed against {args.baseline}:")
        for before, after in zip(by_version["baseline"].pages, current.pages, strict=True):
            if halves[after.page.name] not in shown_halves:
                continue
            old, new = misses(before, args.body_floor), misses(after, args.body_floor)
            for fld in FIELDS:
                if (fld in old) != (fld in new) or (fld in old and old[fld] != new[fld]):
                    verdict = "fixed" if fld not in new else "broken" if fld not in old else "changed"
                    shown = new.get(fld, old.get(fld, ("", "")))
                    print(f"  [{halves[after.page.name]}] {after.page.name} {fld} {verdict}: expected {shown[0]}")
                    print(f"      before {old[fld][1] if fld in old else 'right'}")
                    print(f"      after  {new[fld][1] if fld in new else 'right'}")

    if args.explain:
        for half in shown_halves:
            for fld in (*FIELDS, "refused"):
                rows_ = [(p, misses(p, args.body_floor)[fld]) for p in current.pages
                         if halves[p.page.name] == half and fld in misses(p, args.body_floor)]
                if not rows_:
                    continue
                print(f"\n{half} half, {fld}: {len(rows_)} misses")
                for p, (expected, found) in rows_:
                    print(f"  {p.page.name}  ({sites[p.page.name]})")
                    print(f"      expected {expected}")
                    print(f"      found    {found}")
    if args.json:
        print(json.dumps({"halves": {h: sorted({sites[n] for n, x in halves.items() if x == h}) for h in HALVES},
                          "scores": results, "cpu_ms_per_page": {v: 1000 * min(t) / len(pages)
                                                                 for v, t in cpu.items() if t}}))


if __name__ == "__main__":
    main()
