"""Progress of long ingest work when stderr is not a terminal: plain lines now and then, not silence."""

from __future__ import annotations

import io

from ingest.progress import progress


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_at_each_tenth_with_elapsed_and_time_left():
    out, clock = io.StringIO(), _Clock()
    with progress(True, 20, "ingesting", "files", stream=out, live=False, now=clock) as advance:
        clock.t += 4
        advance(1)  # 5 %: no line yet
        clock.t += 4
        advance(1)  # 10 %
        clock.t += 2
        advance(17)  # 95 %
        advance(1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "ingesting: 2/20 files (10 %), 0:00:08 elapsed, about 0:01:12 left",
        "ingesting: 19/20 files (95 %), 0:00:10 elapsed, about 0:00:00 left",
        "ingesting: 20/20 files (100 %), 0:00:10 elapsed",
    ]


def test_a_slow_run_says_where_it_is_every_half_minute_between_tenths():
    out, clock = io.StringIO(), _Clock()
    with progress(True, 1000, "ingesting", "files", stream=out, live=False, now=clock) as advance:
        for _ in range(3):
            clock.t += 31
            advance(1)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "ingesting: 1/1000 files (0 %)", "ingesting: 2/1000 files (0 %)", "ingesting: 3/1000 files (0 %)"]


def test_a_crawl_of_unknown_size_counts():
    out, clock = io.StringIO(), _Clock()
    with progress(True, None, "crawling", "URLs", stream=out, live=False, now=clock) as advance:
        advance()
        clock.t += 45
        advance()
    assert out.getvalue() == "crawling: 2 URLs, 0:00:45 elapsed\n"


def test_output_for_machines_and_empty_work_print_nothing():
    out = io.StringIO()
    with progress(False, 10, "ingesting", "files", stream=out, live=False) as advance:
        advance(10)
    with progress(True, 0, "ingesting", "files", stream=out, live=False) as advance:
        advance(0)
    assert out.getvalue() == ""


def test_on_a_terminal_a_live_bar_counts_the_work():
    shown = progress(True, 5, "ingesting", "files", stream=io.StringIO(), live=True)
    with shown as advance:
        advance(3)
        assert shown._bar.tasks[0].completed == 3 and shown._bar.tasks[0].total == 5
