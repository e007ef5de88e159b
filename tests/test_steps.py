"""Subprocess steps started early: input on stdin, a time limit from when it is sent, output in the log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nestml_registry.compiler.steps import EarlyStep

ECHO = "import sys; line = sys.stdin.readline(); print('got', line.strip() or '(nothing)'); sys.exit(3 if line else 0)"
SLOW = "import sys, time; sys.stdin.readline(); time.sleep(60)"


def test_input_reaches_the_child_and_its_output_the_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    step = EarlyStep("echo", [sys.executable, "-c", ECHO], cwd=tmp_path, log=log)
    time.sleep(0.2)  # the child starts and waits
    result = step.run("hello", timeout=30)
    assert result.returncode == 3 and not result.timed_out
    assert "got hello" in log.read_text() and "started early" in log.read_text()


def test_the_time_limit_counts_from_the_input_and_kills_the_child(tmp_path: Path) -> None:
    step = EarlyStep("slow", [sys.executable, "-c", SLOW], cwd=tmp_path, log=tmp_path / "log")
    result = step.run("go", timeout=0.5)
    assert result.timed_out and step.proc.poll() is not None
    assert "killed after the time limit of 0.5 s" in (tmp_path / "log").read_text()


def test_a_step_not_needed_is_stopped_at_once(tmp_path: Path) -> None:
    """E.g. the NEST loader of a build whose code generation failed: it is still importing."""
    step = EarlyStep("busy", [sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path,
                     log=tmp_path / "log")
    start = time.monotonic()
    step.cancel()
    assert step.proc.returncode is not None and time.monotonic() - start < 10


def test_a_spare_reports_into_the_log_of_the_work_it_takes(tmp_path: Path) -> None:
    step = EarlyStep("slow", [sys.executable, "-c", SLOW], cwd=tmp_path, log=tmp_path / "spare.log")
    result = step.run("go", timeout=0.5, log=tmp_path / "build.log")
    build_log = (tmp_path / "build.log").read_text()
    assert result.timed_out and "a spare started earlier" in build_log and "killed after the time limit" in build_log
