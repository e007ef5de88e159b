"""Subprocess steps: argument lists (never a shell string), a time limit, output into a log file."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


WORK_NOTE = "(NESTML_REGISTRY_STEP_WORK_BYTES)"  # ends the line a stopped step's log gets (compiler.children)


@dataclass(frozen=True)
class Watch:
    """A folder a step may fill up to ``limit`` bytes (of disk blocks): watched while the step runs."""

    folder: Path
    limit: int
    every: float = 0.5  # seconds between two looks

    def exceeded(self) -> bool:
        return disk_use(self.folder, self.limit) > self.limit

    def note(self, name: str) -> bytes:
        return (f"\n[{name}: stopped: the build's work folder passed the limit of {self.limit // 1024 ** 2} MiB "
                f"{WORK_NOTE}]\n").encode()


def disk_use(folder: Path, stop_above: int | None = None) -> int:
    """Bytes of disk the files under ``folder`` take (blocks, so sparse files count as what they use); the
    count stops once it passes ``stop_above``."""
    total, pending = 0, [str(folder)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                if stop_above is not None and total > stop_above:
                    return total
    return total


def _wait(proc: subprocess.Popen, timeout: float, watch: Watch | None) -> tuple[int, bool]:
    """Wait for ``proc``; (its status, whether it was stopped for filling its folder). Raises
    ``subprocess.TimeoutExpired`` at the time limit."""
    if watch is None:
        return proc.wait(timeout=timeout), False
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc.wait(timeout=max(0.0, min(watch.every, deadline - time.monotonic()))), False
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if watch.exceeded():
                _kill_group(proc)
                return proc.returncode, True


@dataclass(frozen=True)
class StepResult:
    name: str
    returncode: int | None  # None: killed at the time limit
    seconds: float
    timeout: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_step(name: str, argv: Sequence[str], *, cwd: Path, log: Path, timeout: float,
             env: Mapping[str, str] | None = None, shown: Sequence[str] | None = None,
             watch: Watch | None = None) -> StepResult:
    """Run ``argv`` in ``cwd``, appending its stdout and stderr to ``log``.

    The child gets its own process group, so a time-out kills everything it started (make's
    compilers included). ``shown``: the command the log names (the step without its sandbox).
    ``watch``: a folder it is stopped for filling past a limit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(shown or argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None, start_new_session=True)
        try:
            code, filled = _wait(proc, timeout, watch)
            if filled and watch is not None:
                out.write(watch.note(name))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
            out.write(f"\n[{name}: killed after the time limit of {timeout:g} s]\n".encode())
        except BaseException:
            _kill_group(proc)
            raise
    seconds = time.monotonic() - start
    logger.debug("step %s exited %s after %.2f s", name, code, seconds)
    return StepResult(name, code, seconds, timeout)


def run_steps_parallel(steps: Sequence[tuple[str, Sequence[str]]], *, cwd: Path, log: Path, timeout: float,
                       jobs: int, env: Mapping[str, str] | None = None,
                       shown: Sequence[Sequence[str]] | None = None, watch: Watch | None = None) -> list[StepResult]:
    """Run independent steps, at most ``jobs`` at a time, all within ``timeout`` seconds from now.

    Each step writes to its own file while it runs; the files are appended to ``log`` in the order
    of ``steps`` afterwards, so their messages do not interleave."""
    deadline = time.monotonic() + timeout
    parts = [log.with_name(f"{log.name}.{i}.part") for i in range(len(steps))]

    def run(i: int) -> StepResult:
        name, argv = steps[i]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return StepResult(name, None, 0.0, timeout)
        return run_step(name, argv, cwd=cwd, log=parts[i], timeout=remaining, env=env,
                        shown=shown[i] if shown else None, watch=watch)

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(run, range(len(steps))))
    finally:
        with open(log, "ab") as out:
            for part in parts:
                if part.is_file():
                    out.write(part.read_bytes())
                    part.unlink()
    return results


class EarlyStep:
    """A step started before its input exists, so that its slow start-up (imports) overlaps other work.

    The child gets its input as one line on stdin when :meth:`run` is called; :meth:`cancel` closes
    stdin (the child then exits) and kills its process group if it does not. Output goes to ``log``."""

    def __init__(self, name: str, argv: Sequence[str], *, cwd: Path, log: Path,
                 env: Mapping[str, str] | None = None, shown: Sequence[str] | None = None,
                 watch: Watch | None = None) -> None:
        self.name = name
        self.log = log
        self.watch = watch
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(log, "ab")  # noqa: SIM115 - closed by run() or cancel()
        self._out.write(f"\n$ {' '.join(shown or argv)}   (started early; input on stdin)\n".encode())
        self._out.flush()
        self.proc = subprocess.Popen(list(argv), cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, env=dict(env) if env is not None else None,
                                     start_new_session=True)

    def run(self, line: str, timeout: float, log: Path | None = None) -> StepResult:
        """Send the input and wait (at most ``timeout`` seconds from now) for the child to finish.

        ``log``: the log of the work the child now does, when it is not the one it was started with
        (a spare that moves its output there itself): it gets the step's header and any kill notice."""
        if log is not None:
            self._out.close()
            self._out = open(log, "ab")  # noqa: SIM115 - closed below
            self._out.write(f"\n$ {self.name}: a spare started earlier (pid {self.proc.pid})\n".encode())
            self._out.flush()
        start = time.monotonic()
        try:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line.encode() + b"\n")
                self.proc.stdin.close()
            except BrokenPipeError:  # it died already: its status says how
                pass
            code: int | None
            code, filled = _wait(self.proc, timeout, self.watch)
            if filled and self.watch is not None:
                self._out.write(self.watch.note(self.name))
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
            code = None
            self._out.write(f"\n[{self.name}: killed after the time limit of {timeout:g} s]\n".encode())
        except BaseException:
            _kill_group(self.proc)
            raise
        finally:
            self._out.close()
        seconds = time.monotonic() - start
        logger.debug("step %s exited %s after %.2f s", self.name, code, seconds)
        return StepResult(self.name, code, seconds, timeout)

    def cancel(self) -> None:
        """Not needed after all: stop the child now (it has had no input, so it has done nothing)."""
        if self.proc.returncode is None:
            with contextlib.suppress(OSError):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            _kill_group(self.proc)
        if not self._out.closed:
            self._out.close()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def default_jobs() -> int:
    """How many parallel compile jobs this process may run: the cores it is allowed to use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
