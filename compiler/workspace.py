"""One build's work folder, and the sandbox every step of that build runs in.

    ws = Workspace.create(cache.work_dir, "1f2e3d-", sandbox, env)
    ws.run("codegen", [python, "-m", "nestml_registry.compiler.codegen", ...], log=log, timeout=120)
    result = ws.read_json("codegen.json")
    ws.remove()

The folder is the only place the steps may write (see :mod:`nestml_registry.compiler.sandbox`); what they leave
there is read back through :mod:`nestml_registry.compiler.outputs`, never by following a path they could have
changed into a link.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nestml_registry.compiler import outputs
from nestml_registry.compiler.sandbox import Sandbox, minimal_env
from nestml_registry.compiler.steps import EarlyStep, StepResult, Watch, run_step, run_steps_parallel


class Workspace:
    def __init__(self, path: Path, sandbox: Sandbox, env: Mapping[str, str],
                 writable: Sequence[Path] = ()) -> None:
        self.path = path
        self.sandbox = sandbox
        self.env = minimal_env(path, env)
        self.writable = tuple(writable)

    @classmethod
    def create(cls, parent: Path, prefix: str, sandbox: Sandbox, env: Mapping[str, str],
               writable: Sequence[Path] = ()) -> Workspace:
        parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        sandbox.prepare(path)
        return cls(path, sandbox, env, writable)

    def with_env(self, extra: Mapping[str, str], writable: Sequence[Path] = ()) -> Workspace:
        """The same folder, for steps that need more in their environment (and maybe another folder)."""
        return Workspace(self.path, self.sandbox, {**self.env, **extra}, [*self.writable, *writable])

    def command(self, argv: Sequence[str], cpu_seconds: float, cwd: Path | None = None) -> list[str]:
        return self.sandbox.command(argv, work=self.path, cpu_seconds=cpu_seconds, cwd=cwd, writable=self.writable)

    @property
    def watch(self) -> Watch:
        """The work folder's size limit, watched while each step runs."""
        return Watch(self.path, self.sandbox.limits.work_bytes)

    def run(self, name: str, argv: Sequence[str], *, log: Path, timeout: float, cwd: Path | None = None) -> StepResult:
        with self.sandbox.noting_limits(log):
            return run_step(name, self.command(argv, timeout, cwd), cwd=cwd or self.path, log=log, timeout=timeout,
                            env=self.env, shown=argv, watch=self.watch)

    def run_parallel(self, steps: Sequence[tuple[str, Sequence[str]]], *, log: Path, timeout: float, jobs: int,
                     cwd: Path | None = None) -> list[StepResult]:
        wrapped = [(name, self.command(argv, timeout, cwd)) for name, argv in steps]
        with self.sandbox.noting_limits(log):
            return run_steps_parallel(wrapped, cwd=cwd or self.path, log=log, timeout=timeout, jobs=jobs,
                                      env=self.env, shown=[argv for _, argv in steps], watch=self.watch)

    def early(self, name: str, argv: Sequence[str], *, log: Path, cpu_seconds: float) -> EarlyStep:
        return EarlyStep(name, self.command(argv, cpu_seconds), cwd=self.path, log=log, env=self.env, shown=argv,
                         watch=self.watch)

    def read_json(self, relative: str) -> Any:
        return outputs.read_json(self.path, relative)

    def copy_out(self, relative: str, dest: Path, limit: int) -> str:
        return outputs.copy_output(self.path, relative, dest, limit)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)  # fd-based: links inside are removed, not followed
