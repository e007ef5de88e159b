"""The two Python child steps of a build, as the parent drives them: NESTML's code generation
(:mod:`nestml_registry.compiler.codegen`) and the NEST load check (:mod:`nestml_registry.compiler.introspect`),
each sandboxed in the build's work folder, with their outputs read back and checked, and limits turned into diagnostics.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestml_registry.compiler import hints
from nestml_registry.compiler.cache import LocalCache
from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.outputs import OutputError
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sandbox import MEMORY_NOTE, PROCESS_NOTE, GiB, Limits, Sandbox
from nestml_registry.compiler.sanitise import Sanitised
from nestml_registry.compiler.steps import WORK_NOTE, EarlyStep, StepResult
from nestml_registry.compiler.toolchain import Toolchain, nest_config_prefix
from nestml_registry.compiler.work_folders import owner_prefix
from nestml_registry.compiler.workspace import Workspace

if TYPE_CHECKING:
    from nestml_registry.compiler.config import CompilerConfig

_OOM_RE = re.compile(r"out of memory|virtual memory exhausted|std::bad_alloc|Cannot allocate memory|MemoryError")
_IDENT_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# the child steps, run as python -m MODULE
CODEGEN, INTROSPECT = "nestml_registry.compiler.codegen", "nestml_registry.compiler.introspect"


@dataclass(frozen=True)
class CodegenOutcome:
    ok: bool
    diagnostics: list[Diagnostic]
    models: list[dict]


def _size(n: int) -> str:
    return f"{n // GiB} GiB" if n % GiB == 0 else f"{n / 1024 ** 2:.0f} MiB"


def limit_diagnostics(diags: list[Diagnostic], log: Path, limits: Limits, what: str) -> list[Diagnostic]:
    """A failed step that ran into a resource limit says so, in place of a generic failure."""
    if not diags or diags[0].code not in ("CXX_BUILD_FAILED", "CODEGEN_CRASHED"):
        return diags
    tail = _tail(log)
    if PROCESS_NOTE in tail:
        return [Diagnostic.error(f"{what} started more processes than the build's limit of {limits.processes} and was "
                                 "stopped (NESTML_REGISTRY_STEP_PROCESSES)", code="TOO_MANY_PROCESSES")]
    if WORK_NOTE in tail:
        return [Diagnostic.error(f"{what} filled the build's work folder past the limit of {_size(limits.work_bytes)} "
                                 "and was stopped (NESTML_REGISTRY_STEP_WORK_BYTES)", code="WORK_TOO_LARGE")]
    if MEMORY_NOTE in tail or _OOM_RE.search(tail):
        return [Diagnostic.error(f"{what} used more than the memory limit of {_size(limits.memory_bytes)} and was "
                                 "stopped (NESTML_REGISTRY_STEP_MEMORY); simplify the model's equations",
                                 code="OUT_OF_MEMORY")]
    if "File size limit exceeded" in tail:
        return [Diagnostic.error(f"{what} wrote a file larger than the limit of {_size(limits.file_bytes)} and was "
                                 "stopped (NESTML_REGISTRY_STEP_FILE_BYTES)", code="FILE_TOO_LARGE")]
    return diags


def _tail(log: Path, size: int = 64 * 1024) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def signal_of(step: StepResult) -> int | None:
    """The signal that ended a step (as bwrap or the shell reports it: 128 + N, or -N)."""
    code = step.returncode
    if code is None or code == 0:
        return None
    if code < 0:
        return -code
    return code - 128 if 128 < code < 128 + 65 else None


class CodegenRunner:
    """Runs NESTML for a build, in a fresh process each time (with ``warm_codegen``, one started early)."""

    def __init__(self, config: CompilerConfig, cache: LocalCache, sandbox: Sandbox, toolchain: Toolchain) -> None:
        self.config, self.cache, self.sandbox, self.toolchain = config, cache, sandbox, toolchain
        # a fixed hash seed: NESTML orders some names through sets, and the same source should give
        # the same C++ (reproducible modules, ccache hits)
        # (the children import this package the way the parent does, through site-packages)
        self.env = {"PYTHONHASHSEED": "0"}
        if os.environ.get("PYTHONPATH"):
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self._spare: tuple[Workspace, EarlyStep] | None = None
        self._taken: tuple[Workspace, EarlyStep] | None = None

    def _new_workspace(self, prefix: str) -> Workspace:
        return Workspace.create(self.cache.work_dir, prefix, self.sandbox, self.env)

    def _start_spare(self) -> tuple[Workspace, EarlyStep]:
        ws = self._new_workspace(owner_prefix("spare"))
        step = ws.early("codegen", [sys.executable, "-m", CODEGEN, "--stdin"],
                        log=ws.path.with_name(ws.path.name + ".log"), cpu_seconds=self.config.codegen_timeout + 60)
        return ws, step

    def prestart(self) -> None:
        if self._spare is None:
            self._spare = self._start_spare()

    def close(self) -> None:
        for spare in (self._spare, self._taken):
            if spare is not None:
                spare[1].cancel()
                spare[1].log.unlink(missing_ok=True)
                spare[0].remove()
        self._spare = self._taken = None

    def workspace(self, key: str) -> Workspace:
        """The build's work folder: with ``warm_codegen``, the one a spare NESTML process already runs in."""
        if not self.config.warm_codegen:
            return self._new_workspace(owner_prefix(key[:12]))
        self._taken = self._spare or self._start_spare()
        self._spare = None
        return self._taken[0]

    def run(self, request: BuildRequest, sanitised: dict[str, Sanitised], ws: Workspace, log: Path) -> CodegenOutcome:
        src_dir = ws.path / "src"
        src_dir.mkdir()
        files = []
        for i, src in enumerate(request.sources):
            path = src_dir / f"f{i:02d}_{src.name.removesuffix('.nestml')}.nestml"
            path.write_text(sanitised[src.name].text, encoding="utf-8")
            files.append({"path": str(path), "name": src.name, "models": [m.name for m in src.models()]})
        tc = self.toolchain
        job = {
            "files": files, "target": str(ws.path / "target"), "module": request.module, "suffix": request.suffix,
            "pairs": [p.to_dict() for p in request.pairs], "weight_variables": dict(request.weight_variables),
            "delay_variables": dict(request.delay_variables),
            "nest_path": str(nest_config_prefix(tc, self.config.cache_dir)), "nest_version": tc.nest_version_tag(),
        }
        (ws.path / "job.json").write_text(json.dumps(job))
        result_path = ws.path / "codegen.json"
        timeout = self.config.codegen_timeout
        if self._taken is not None and self._taken[0] is ws:
            _, spare = self._taken
            self._spare = self._start_spare()  # the next build's, importing while this one runs
            line = json.dumps({"job": str(ws.path / "job.json"), "result": str(result_path), "cwd": str(ws.path)})
            step = spare.run(line, timeout=timeout)
            _append(spare.log, log)
            self._taken = None
        else:
            step = ws.run("codegen", [sys.executable, "-m", CODEGEN, str(ws.path / "job.json"),
                                      str(result_path)], log=log, timeout=timeout)
        return self._outcome(step, ws, log)

    def check(self, texts: dict[str, str], describe: bool = False) -> CodegenOutcome:
        """NESTML's own checks of each text (name -> NESTML text), no code generated: a fresh process in a
        work folder of its own, removed afterwards (its log too). With ``describe``, the outcome's models
        say what each parsed model declares, with the starting values worked out
        (:mod:`nestml_registry.compiler.spec_values`)."""
        ws = self._new_workspace(owner_prefix("check"))
        log = ws.path.with_name(ws.path.name + ".log")
        try:
            (ws.path / "src").mkdir()
            files = []
            for i, (name, text) in enumerate(texts.items()):
                path = ws.path / "src" / f"f{i:02d}.nestml"
                path.write_text(text, encoding="utf-8")
                files.append({"path": str(path), "name": name, "models": []})
            job = {"check_only": True, "describe": describe, "files": files, "target": str(ws.path / "target"),
                   "nest_version": self.toolchain.nest_version_tag()}
            (ws.path / "job.json").write_text(json.dumps(job))
            step = ws.run("check", [sys.executable, "-m", CODEGEN, str(ws.path / "job.json"),
                                    str(ws.path / "codegen.json")], log=log, timeout=self.config.codegen_timeout)
            return self._outcome(step, ws, log)
        finally:
            ws.remove()
            log.unlink(missing_ok=True)

    def _outcome(self, step: StepResult, ws: Workspace, log: Path) -> CodegenOutcome:
        limits, timeout = self.sandbox.limits, self.config.codegen_timeout
        if step.timed_out or signal_of(step) == signal.SIGXCPU:
            return _failure(f"code generation took longer than the time limit of {timeout:g} s and was stopped "
                            "(NESTML_REGISTRY_CODEGEN_TIMEOUT)", "TIMEOUT")
        try:
            data = ws.read_json("codegen.json")
            return _parse_codegen(data, limits)
        except (OutputError, ValueError, KeyError, TypeError, AttributeError) as exc:
            crashed = _failure(f"NESTML's process ended without a result (exit status {step.returncode}: {exc})",
                               "CODEGEN_CRASHED")
            diags = limit_diagnostics(crashed.diagnostics, log, limits, "code generation")
            return CodegenOutcome(False, diags, [])


def _failure(message: str, code: str) -> CodegenOutcome:
    return CodegenOutcome(False, [Diagnostic.error(message, code=code)], [])


def _parse_codegen(data: Any, limits: Limits) -> CodegenOutcome:
    """The code generation step's result, checked field by field (it came from a sandboxed process)."""
    diags = hints.explain_all([Diagnostic.from_dict(_diag_dict(d)) for d in data["diagnostics"]])
    if any(d.code == "OUT_OF_MEMORY" for d in diags):
        diags = [Diagnostic.error(f"code generation used more than the memory limit of "
                                  f"{_size(limits.memory_bytes)} and was stopped (NESTML_REGISTRY_STEP_MEMORY); "
                                  "simplify the model's equations", code="OUT_OF_MEMORY")]
    models = [_model_dict(m) for m in data["models"]]
    return CodegenOutcome(bool(data["ok"]), diags, models)


def _diag_dict(d: Any) -> dict:
    if not isinstance(d, dict):
        raise TypeError("a diagnostic is not an object")
    out: dict[str, Any] = {}
    for k in ("file", "message", "code", "severity"):
        v = d.get(k)
        out[k] = str(v)[:4000] if v is not None else None
    for k in ("line", "column", "end_line", "end_column"):
        v = d.get(k)
        out[k] = v if isinstance(v, int) and not isinstance(v, bool) else None
    if out["severity"] not in ("error", "warning"):
        out["severity"] = "error"
    out["message"] = out["message"] or "(no message)"
    return out


def _model_dict(m: Any) -> dict:
    if not isinstance(m, dict) or not _IDENT_RE.fullmatch(str(m.get("nestml_name", ""))):
        raise TypeError("a model description is not one")

    def decls(items: Any) -> list[dict]:
        return [{"name": str(x["name"]), "type": _str_or_none(x.get("type")),
                 "default": _str_or_none(x.get("default")),
                 "line": x.get("line") if isinstance(x.get("line"), int) else None} for x in items]

    ports = [{k: _str_or_none(p.get(k)) for k in ("name", "kind", "type", "size")} for p in m["input_ports"]]
    out = {"nestml_name": m["nestml_name"], "parameters": decls(m["parameters"]), "state": decls(m["state"]),
           "input_ports": ports}
    if isinstance(m.get("values"), dict):
        out["values"] = {str(k)[:200]: _value_or_none(v) for k, v in m["values"].items()}
    return out


def _value_or_none(v: Any) -> float | bool | str | None:
    """A starting value from the child: a number, a truth value or "inf"/"-inf"; anything else is none."""
    if isinstance(v, bool) or (isinstance(v, (int, float)) and math.isfinite(v)):
        return v
    return v if v in ("inf", "-inf") else None


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)[:1000]


def _append(part: Path, log: Path) -> None:
    with contextlib.suppress(OSError), open(part, "rb") as fin, open(log, "ab") as out:
        while chunk := fin.read(1024 * 1024):
            out.write(chunk)
    part.unlink(missing_ok=True)


class Loader:
    """The NEST process that loads the built module, started with the build (it imports NEST while
    NESTML runs), in the build's sandbox."""

    def __init__(self, ws: Workspace, log: Path, timeout: float) -> None:
        self.ws, self.timeout = ws, timeout
        argv = [sys.executable, "-m", INTROSPECT, "--stdin", str(ws.path / "introspect.json")]
        self.step = ws.early("load", argv, log=log, cpu_seconds=timeout + 60)

    def run(self, module: Path) -> dict:
        step = self.step.run(str(module), timeout=self.timeout)
        try:
            data = self.ws.read_json("introspect.json")
            return _parse_loaded(data)
        except (OutputError, ValueError, KeyError, TypeError, AttributeError) as exc:
            state = "timed out" if step.timed_out else f"ended with exit status {step.returncode}"
            return {"ok": False, "error": f"the NEST process that loads it {state} ({exc})"}

    def cancel(self) -> None:
        self.step.cancel()


def _parse_loaded(data: Any) -> dict:
    """The load check's result, checked (it came from a process that ran the module's code)."""
    if not isinstance(data, dict):
        raise TypeError("the result is not an object")
    if not data.get("ok"):
        return {"ok": False, "error": str(data.get("error"))[:2000]}
    names = [*data["node_models"], *data["synapse_models"]]
    if not all(isinstance(n, str) and _IDENT_RE.fullmatch(n) for n in names):
        raise TypeError("a model name is not a name")
    return {"ok": True, "node_models": list(data["node_models"]), "synapse_models": list(data["synapse_models"]),
            "defaults": {n: dict(data["defaults"].get(n, {})) for n in names},
            "receptor_types": {n: data["receptor_types"].get(n) or {} for n in names}}
