"""How far a long command is, on stderr: on a terminal one live line per step (rich) with the counts by outcome,
the rate and the time left where the total is known; elsewhere (a log file, CI, a pipe) a plain line at most every
few seconds and one when the step ends. Nothing goes to stdout: the commands' output there is parsed.

The stages know nothing of it: a command hands them a callback (``on_batch``, ``on_feed``, ``on_copy``,
``on_progress``) made here. Airflow tasks pass none, so their logs get no progress lines.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TaskID, TextColumn
from rich.progress import Progress as LiveLines
from rich.table import Column
from rich.text import Text

if TYPE_CHECKING:
    from ingest.reconcile import VerifyProgress
    from ingest.search_index.migrate import CopyCounts

PLAIN_EVERY_SECONDS = 5.0

# What `ingest process` shows of its counters: the outcome, the counters that add up to it.
PROCESS_OUTCOMES: dict[str, tuple[str, ...]] = {
    "indexed": ("index/indexed",),
    "duplicates": ("dedup/duplicate_text",),
    "already indexed": ("process/already_indexed",),
    "dead-lettered": ("process/dead_lettered",),
}
# A polled feed that is neither of these failed (its reason is a counter of its own: poll/http_4xx, poll/timeout …).
_POLL_NOT_FAILED = ("poll/feeds_ok", "poll/feed_disabled", "poll/not_due", "poll/host_busy")
_VERIFY_STEPS = {  # VerifyProgress.step: (the line's label, its unit, what ``found`` counts)
    "marks": ("index verify, marks read", "ids", ""),
    "lookups": ("index verify, marks looked up", "ids", "missing"),
    "documents": ("index verify, documents read", "documents", "not marked"),
}


def is_live(stream: TextIO) -> bool:
    """Whether a live line can be redrawn on ``stream``: a terminal that is not a dumb one (not a file, a pipe)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and os.environ.get("TERM", "") not in ("dumb", "unknown")


class Progress:
    """The progress of one command, a step after another (``start`` ends the step before). Used as a context
    manager: leaving it ends the last step, marked done unless an exception is on its way. ``live``: draw on a
    terminal (default: when ``stream``, stderr, is one and no log lines go there)."""

    def __init__(self, *, stream: TextIO | None = None, live: bool | None = None,
                 every: float = PLAIN_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        # With -v, log lines go to stderr too and would tear a live line: plain lines go between them instead.
        self.live = (is_live(self.stream) and not logging.getLogger().isEnabledFor(logging.INFO)
                     if live is None else live)
        self.every = every
        self.clock = clock
        self.label = ""  # the step under way ("" between steps)
        self.unit = ""
        self.total: int | None = None
        self.completed = 0
        self.outcomes: dict[str, int] = {}
        self._started = self._said_at = 0.0
        self._said = 0  # plain lines written for this step
        self._lines: LiveLines | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.finish(ok=error is None)

    def start(self, label: str, unit: str, total: int | None = None, elapsed: float = 0.0) -> None:
        """A new step: ``label`` (``process``, ``poll`` …) counting ``unit`` (``articles``) up to ``total``;
        ``elapsed``: seconds it has run already (a stage that says how far it is only after its first part)."""
        self.finish()
        self.label, self.unit, self.total = label, unit, total
        self.completed, self.outcomes = 0, {}
        self._said_at = self.clock()
        self._started = self._said_at - elapsed
        self._said = 0
        if self.live:
            console = Console(file=self.stream, force_terminal=True, force_interactive=True, highlight=False)
            # Not redirected: what the command prints to stdout must reach stdout unchanged.
            # One line: on a narrow terminal the counts by outcome are cut short, not wrapped onto a second line.
            fixed = Column(no_wrap=True)
            self._lines = LiveLines(
                TextColumn("{task.description}", table_column=fixed), BarColumn(bar_width=24, table_column=fixed),
                MofNCompleteColumn(table_column=fixed), _Rate(unit, fixed), _TimeLeft(fixed), _Outcomes(),
                console=console, redirect_stdout=False, redirect_stderr=False, refresh_per_second=4,
                get_time=self.clock,
            )
            self._task = self._lines.add_task(label, total=total, outcomes="")
            for task in self._lines.tasks:  # the rate counts from the stage's own start
                if task.id == self._task and task.start_time is not None:
                    task.start_time -= elapsed
            self._lines.start()

    def update(self, completed: int, outcomes: Mapping[str, int] | None = None, total: int | None = None) -> None:
        """How far the step is: ``completed`` units, the counts by outcome, the total if it changed."""
        self.completed = completed
        if outcomes is not None:
            self.outcomes = dict(outcomes)
        if total is not None:
            self.total = total
        if self._lines is not None and self._task is not None:
            self._lines.update(self._task, completed=completed, total=self.total,
                               outcomes=_describe(self.outcomes, " · "))
            return
        now = self.clock()
        if now - self._said_at >= self.every:
            self._say(self.line(now))

    def finish(self, ok: bool = True) -> None:
        """End the step under way (if any): done when ``ok``, else left as it stood (an error line follows)."""
        if not self.label:
            return
        if self._lines is not None and self._task is not None:
            if ok:  # the time it took instead of the time left; a total not known ahead is known now
                self._lines.update(self._task, total=self.completed if self.total is None else self.total,
                                   done=True)
            self._lines.stop()
        elif ok and self._said:  # a log that told how it went also tells how it ended
            self._say(self.line(self.clock(), done=True))
        self.label, self._lines, self._task = "", None, None

    def line(self, now: float, done: bool = False) -> str:
        """The plain line of the step under way, as it stands at ``now``."""
        elapsed = max(now - self._started, 0.0)
        rate = self.completed / elapsed if elapsed > 0 else 0.0
        if done:
            head = f"done, {self.completed} {self.unit} in {_clock(elapsed)}, {_rate(rate)} {self.unit}/s"
        else:
            head = f"{self.completed}"
            if self.total is not None:
                head += f"/{self.total} {self.unit}"
                if self.total:
                    head += f" ({min(100, 100 * self.completed // self.total)}%)"
            else:
                head += f" {self.unit}"
            head += f", {_rate(rate)} {self.unit}/s"
            if self.total is not None and rate > 0 and self.completed < self.total:
                head += f", {_clock(math.ceil((self.total - self.completed) / rate))} left"
        counts = _describe(self.outcomes, ", ")
        return f"ingest {self.label}: {head}" + (f"; {counts}" if counts else "")

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
        self._said += 1
        self._said_at = self.clock()

    # ------------------------------------------------ the callbacks the commands hand the stages

    def articles(self, total: int | None, label: str = "process") -> Callable[[Mapping[str, int]], None]:
        """A ``process`` step over ``total`` entries; the callback takes the run's counters so far."""
        self.start(label, "articles", total)

        def on_batch(counts: Mapping[str, int]) -> None:
            self.update(counts.get("process/read", 0), process_outcomes(counts))

        return on_batch

    def feeds(self, total: int, label: str = "poll") -> Callable[[Mapping[str, int]], None]:
        """A ``poll`` step over ``total`` feeds; the callback is called once per feed done, with the counters."""
        self.start(label, "feeds", total)
        done = 0

        def on_feed(counts: Mapping[str, int]) -> None:
            nonlocal done
            done += 1
            failed = done - sum(counts.get(name, 0) for name in _POLL_NOT_FAILED)
            self.update(done, {"ok": counts.get("poll/feeds_ok", 0), "failed": max(failed, 0),
                               "entries queued": counts.get("poll/queued", 0)})

        return on_feed

    def copies(self, label: str = "index migrate") -> Callable[[CopyCounts], None]:
        """``migrate_index``'s ``on_copy``: the copy is a step from its first call on."""

        def on_copy(counts: CopyCounts) -> None:
            if self.label != label:
                self.start(label, "documents", counts.in_source, elapsed=counts.seconds)
            self.update(counts.copied + counts.already_there + counts.failed,
                        {"copied": counts.copied, "already there": counts.already_there, "failed": counts.failed},
                        total=counts.in_source)

        return on_copy

    def verification(self) -> Callable[[VerifyProgress], None]:
        """``verify_index``'s ``on_progress``: a step for each of its own (marks read, looked up, documents read)."""

        def on_progress(where: VerifyProgress) -> None:
            label, unit, found = _VERIFY_STEPS[where.step]
            if self.label != label:
                self.start(label, unit, where.total)
            self.update(where.done, {found: where.found} if found else None, total=where.total)

        return on_progress


def process_outcomes(counts: Mapping[str, int]) -> dict[str, int]:
    """What ``ingest process`` shows of a run's counters, by outcome."""
    return {label: sum(counts.get(name, 0) for name in names) for label, names in PROCESS_OUTCOMES.items()}


class _Rate(ProgressColumn):
    """Units per second since the step started."""

    def __init__(self, unit: str, table_column: Column | None = None) -> None:
        super().__init__(table_column)
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{_rate(rate)} {self.unit}/s", style="progress.data.speed")


class _TimeLeft(ProgressColumn):
    """The time left where the total is known (rich's estimate over the last 30 s), the time taken once done."""

    def render(self, task: Task) -> Text:
        if task.finished or task.fields.get("done"):
            return Text(f"in {_clock(task.finished_time or task.elapsed or 0.0)}", style="progress.elapsed")
        left = task.time_remaining if task.total is not None else None
        return Text(f"{_clock(math.ceil(left))} left" if left is not None else "", style="progress.remaining")


class _Outcomes(ProgressColumn):
    """The counts by outcome, in the one column a narrow terminal shrinks (cut with an ellipsis)."""

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("outcomes", ""), no_wrap=True, overflow="ellipsis")


def _describe(outcomes: Mapping[str, int], between: str) -> str:
    return between.join(f"{label} {n}" for label, n in outcomes.items())


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
