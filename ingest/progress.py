"""How far long ingest work is, on stderr: a live bar on a terminal, a plain line now and then
elsewhere, so a run from cron, systemd or `nohup … > ingest.log` still tells its operator where it
is instead of staying silent for an hour."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

PLAIN_EVERY_S = 30.0  # a plain line at least this often while work goes on


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class progress:
    """`with progress(enabled, total, "ingesting", "files") as advance: … advance(n)`.

    With `total=None` (a crawl, whose size is unknown) it counts. On a terminal, a rich bar (or
    counter) that disappears when done; elsewhere one line per tenth of the total and at least every
    PLAIN_EVERY_S seconds: "ingesting: 120/1173 files (10 %), 0:00:12 elapsed, about 0:01:46 left".
    Disabled (output for machines, `--json`): nothing.
    """

    def __init__(self, enabled: bool, total: int | None, label: str, unit: str, *,
                 stream: TextIO | None = None, live: bool | None = None,
                 now: Callable[[], float] = time.monotonic, every_s: float = PLAIN_EVERY_S):
        self.stream = stream or sys.stderr
        self.enabled = enabled and (total is None or total > 0)
        self.live = self.stream.isatty() if live is None else live
        self.total, self.label, self.unit = total, label, unit
        self.now, self.every_s = now, every_s
        self.done = 0

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n=1: None
        if self.live:
            return self._start_bar()
        self.started = self.last = self.now()
        self.next_tenth = 1
        return self._plain

    def _start_bar(self) -> Callable[[int], None]:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

        columns = ((SpinnerColumn(), TextColumn(f"[bold]{self.label}[/] {{task.completed}} {self.unit}"))
                   if self.total is None else
                   (TextColumn(f"[bold]{self.label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()))
        self._bar = Progress(*columns, console=Console(file=self.stream), transient=True)
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n=1: self._bar.advance(task, n)

    def _plain(self, n: int = 1) -> None:
        self.done += n
        at = self.now()
        tenth = self.total and self.done * 10 // self.total
        if tenth and tenth >= self.next_tenth:
            self.next_tenth = tenth + 1
        elif at - self.last < self.every_s:
            return
        self.last = at
        self.stream.write(self._line(at - self.started) + "\n")
        self.stream.flush()

    def _line(self, elapsed: float) -> str:
        if self.total is None:
            return f"{self.label}: {self.done} {self.unit}, {_clock(elapsed)} elapsed"
        line = f"{self.label}: {self.done}/{self.total} {self.unit} ({self.done * 100 // self.total} %), {_clock(elapsed)} elapsed"
        if 0 < self.done < self.total:
            line += f", about {_clock(elapsed * (self.total - self.done) / self.done)} left"
        return line

    def __exit__(self, *exc) -> bool:
        if self.enabled and self.live:
            self._bar.stop()
        return False
