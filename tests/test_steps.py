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


WRITER = ("import os, time\nfor i in range(400):\n    with open(f'f{i}', 'wb') as fh:\n"
          "        fh.write(os.urandom(1024 * 1024))\n    time.sleep(0.005)\n")


def test_a_step_that_fills_its_folder_past_the_limit_is_stopped(tmp_path: Path) -> None:
    from nestml_registry.compiler.steps import Watch, disk_use, run_step

    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "log"
    result = run_step("writer", [sys.executable, "-c", WRITER], cwd=work, log=log, timeout=60,
                      watch=Watch(work, 20 * 1024 ** 2, every=0.05))
    assert not result.ok and not result.timed_out
    assert "passed the limit of 20 MiB (NESTML_REGISTRY_STEP_WORK_BYTES)" in log.read_text()
    assert disk_use(work) < 200 * 1024 ** 2  # stopped long before the 400 MiB it meant to write
    early = EarlyStep("writer", [sys.executable, "-c", "import sys; sys.stdin.readline()\n" + WRITER], cwd=work,
                      log=log, watch=Watch(work, 20 * 1024 ** 2, every=0.05))
    assert not early.run("go", timeout=60).ok and log.read_text().count("STEP_WORK_BYTES") == 2


def test_limit_notes_become_diagnostics_that_name_the_setting(tmp_path: Path) -> None:
    from nestml_registry.compiler.children import limit_diagnostics
    from nestml_registry.compiler.diagnostics import Diagnostic
    from nestml_registry.compiler.sandbox import MEMORY_NOTE, PROCESS_NOTE, Limits

    crashed = [Diagnostic.error("crashed", code="CODEGEN_CRASHED")]
    for note, code, setting in ((f"[{MEMORY_NOTE} of 1024 MiB]", "OUT_OF_MEMORY", "STEP_MEMORY"),
                                (f"[{PROCESS_NOTE} of 64]", "TOO_MANY_PROCESSES", "STEP_PROCESSES"),
                                ("[x: stopped: ... (NESTML_REGISTRY_STEP_WORK_BYTES)]", "WORK_TOO_LARGE",
                                 "STEP_WORK_BYTES")):
        log = tmp_path / f"{code}.log"
        log.write_text(f"output\n{note}\n")
        (d,) = limit_diagnostics(crashed, log, Limits(), "code generation")
        assert d.code == code and f"NESTML_REGISTRY_{setting}" in d.message, d.message
