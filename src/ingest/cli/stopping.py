"""SIGTERM and SIGINT for a worker command: the first asks it to stop (no new entry started, what is not started
handed back, what is started finished), within a bounded time; past it, or at a second signal, it exits at
once (its unacknowledged entries stay pending and its claims expire: nothing is lost either way)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


@dataclass
class Stopping:
    """The signal that asked the command to stop, if one did."""

    signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (143 SIGTERM, 130 SIGINT)."""
        return 128 + (self.signum or 0)


@contextmanager
def stop_on_signals(stop: threading.Event, grace_seconds: float) -> Iterator[Stopping]:
    """Within the block, SIGTERM and SIGINT set ``stop``; the command then has ``grace_seconds`` to finish."""
    got = Stopping()

    def give_up(signum: int) -> None:
        os.write(2, f"ingest: still busy {grace_seconds:g} s after {signal.Signals(signum).name}; exiting now: "
                    "unacknowledged entries stay pending for the next worker\n".encode())
        os._exit(128 + signum)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if got.signum is not None:  # a second signal: stop now
            give_up(signum)
        got.signum = signum
        stop.set()
        watchdog = threading.Timer(grace_seconds, give_up, args=(signum,))
        watchdog.daemon = True
        watchdog.start()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
