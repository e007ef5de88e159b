"""Child-process entry: run NESTML's frontend and code generator for one build.

    python -m compiler.codegen JOB.json RESULT.json
    python -m compiler.codegen --stdin      (a warm spare: imports pynestml, then reads one JSON line
                                             {"job", "result", "cwd"} from stdin; none: exits)

This is the only place (with :mod:`nestml_registry.compiler.introspect`) that imports ``pynestml``. NESTML keeps
process-wide state and may call ``sys.exit``, so each build gets a fresh process. Two things in
NESTML are replaced here: its builder (the C++ is compiled afterwards as our own steps, see
:mod:`nestml_registry.compiler.build`) and its NEST version probe (we know the version from the toolchain); two of
its hot spots get exact fixes (:mod:`nestml_registry.compiler.nestml_patches`), and SymPy's parser, which
NESTML and ODE-toolbox hand model expressions to, never evaluates Python (:mod:`nestml_registry.compiler.sympy_guard`).

The job names the files (already written under the work directory with safe names) and the
display name of each; the result holds diagnostics in our record shape and what the generated
models declare (parameters, state, input ports) for introspection.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from nestml_registry.compiler import nestml_patches, sympy_guard
from nestml_registry.compiler.child import collect_garbage_rarely, exit_now, write_result
from nestml_registry.compiler.request import PAIR_MARK

_START_RE = re.compile(r'^Start processing "(.*)"!$')
_DROP_CODES = {"MODEL_CONTAINS_ERRORS"}  # "contains errors, no code generated": the errors say it already


class _Frontend:
    """The parts of pynestml we use, imported lazily (only in the child process)."""

    def __init__(self, nest_version: str) -> None:
        import pynestml.frontend.pynestml_frontend as fe
        from pynestml.codegeneration.nest_builder import NESTBuilder
        from pynestml.codegeneration.nest_tools import NESTTools
        from pynestml.utils.logger import Logger, LoggingLevel
        from pynestml.utils.messages import MessageCode

        self.fe, self.Logger, self.LoggingLevel, self.MessageCode = fe, Logger, LoggingLevel, MessageCode
        Logger.no_print = True
        NESTBuilder.build = lambda self: None  # the C++ build is our own steps
        # NESTML 9.0 builds its NEST code generator without the options first, so it probes the NEST
        # version in a subprocess that imports NEST (1-2 s, and a sys.exit path) even when
        # codegen_opts["nest_version"] is given: answer the probe with the version we know.
        NESTTools.detect_nest_version = classmethod(lambda cls: nest_version)
        nestml_patches.install()
        sympy_guard.install()  # no model text is evaluated as Python: see compiler/sympy_guard.py
        self.captured: list[Any] = []
        self.parsed: list[Any] = []
        orig_generate, orig_parsed = fe.generate_code, fe.get_parsed_models

        def generate_code(code_generator, models, metadata):
            self.captured = list(models)
            return orig_generate(code_generator, models, metadata)

        def get_parsed_models():
            models = orig_parsed()
            self.parsed = list(models)
            return models

        fe.generate_code = generate_code
        fe.get_parsed_models = get_parsed_models

    def run(self, files: list[str], target: str, platform: str, module: str, suffix: str,
            codegen_opts: dict | None) -> str | None:
        """Run one NESTML call; return an error text if NESTML raised."""
        self.captured, self.parsed = [], []
        try:
            self.fe.generate_target(files, platform, target_path=target, logging_level="ERROR",
                                    module_name=module, suffix=suffix, codegen_opts=codegen_opts or None)
        except SystemExit as exc:
            return f"NESTML exited ({exc.code})"
        except MemoryError:
            raise
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".strip()
        return None

    def diagnostics(self, names: dict[str, str]) -> list[dict]:
        """NESTML's log since the last call, as diagnostic records with 1-based columns."""
        out, current = [], None
        log = self.Logger.get_log()
        for idx in sorted(log):
            artifact, _node, level, code, pos, msg = log[idx]
            _echo(idx, artifact, level, pos, msg)
            if code == self.MessageCode.START_PROCESSING_FILE:
                m = _START_RE.match(str(msg))
                current = Path(m.group(1)).name if m else current
            if level is None or level.value < self.LoggingLevel.WARNING.value:
                continue
            code_name = code.name if isinstance(code, self.MessageCode) else None
            if code_name in _DROP_CODES:
                continue
            d: dict[str, Any] = {
                "file": names.get(Path(artifact).name if artifact else (current or "")),
                "line": None, "column": None, "end_line": None, "end_column": None,
                "severity": "error" if level.name == "ERROR" else "warning",
                "message": str(msg), "code": code_name,
            }
            if pos is not None and not pos.is_added_source_position() and not pos.is_predefined_source_position():
                d.update(line=pos.get_start_line(), column=pos.get_start_column() + 1,
                         end_line=pos.get_end_line(), end_column=pos.get_end_column() + 1)
            out.append(d)
        return out


def _echo(idx: int, artifact: Any, level: Any, pos: Any, msg: Any) -> None:
    """NESTML's message, as NESTML prints it, into the step's log (stdout): NESTML itself prints nothing
    here (``Logger.no_print``; its printing at INFO level costs about 0.7 s of a build)."""
    where = f", {pos}" if pos is not None else ""
    name = Path(artifact).name if artifact else "GLOBAL"
    sys.stdout.write(f"[{idx},{name}, {getattr(level, 'name', level)}{where}]: {msg}\n")


def _declarations(blocks: list[Any], lines: list[str] | None = None) -> list[dict]:
    """Declared variables, their defaults as written in the source (``lines``), else as NESTML prints them;
    their descriptions are the source's comments on ``line``, which code generation never sees (the parent
    adds them, see :mod:`nestml_registry.compiler.sanitise`)."""
    out = []
    for block in blocks:
        for decl in block.get_declarations():
            pos = decl.get_source_position()
            expr = decl.get_expression() if decl.has_expression() else None
            for var in decl.get_variables():
                out.append({
                    "name": var.get_complete_name(),
                    "type": str(decl.get_data_type()).strip(),
                    "default": (_written(expr, lines) or str(expr).strip()) if expr is not None else None,
                    "line": pos.get_start_line() if pos is not None else None,
                })
    return out


_TOKEN_RE = re.compile(r"[A-Za-z0-9_.$']+|\S")


def _written(expr: Any, lines: list[str] | None) -> str | None:
    """``expr`` as its source has it (NESTML's end column is where its last token starts)."""
    pos = expr.get_source_position()
    if not lines or pos is None or pos.is_added_source_position() or pos.is_predefined_source_position():
        return None
    first, start, last, end = pos.get_start_line(), pos.get_start_column(), pos.get_end_line(), pos.get_end_column()
    if not (1 <= first <= last <= len(lines)) or start < 0 or end < 0:
        return None
    token = _TOKEN_RE.match(lines[last - 1], end)
    stop = token.end() if token else end + 1
    text = lines[first - 1][start:stop] if first == last else \
        "\n".join([lines[first - 1][start:], *lines[first:last - 1], lines[last - 1][:stop]])
    return " ".join(text.replace("\\\n", " ").split()) or None


def _input_ports(model: Any) -> list[dict]:
    ports = []
    for block in model.get_input_blocks():
        for port in block.get_input_ports():
            ports.append({
                "name": port.get_name(),
                "kind": "spike" if port.is_spike() else "continuous",
                "type": str(port.get_datatype()).strip() if port.has_datatype() else None,
                "size": str(port.get_size_parameter()) if port.has_size_parameter() else None,
            })
    return ports


def describe(model: Any, lines: list[str] | None = None) -> dict:
    """What a model declares, from its NESTML AST (defaults as written in ``lines``, its source)."""
    return {
        "nestml_name": model.get_name(),
        "parameters": _declarations(model.get_parameters_blocks(), lines),
        "state": _declarations(model.get_state_blocks(), lines),
        "input_ports": _input_ports(model),
    }


def _synapse_options(fe: _Frontend, job: dict, names: dict[str, str]) -> tuple[dict, list[dict]]:
    """``weight_variable`` for every synapse, ``delay_variable`` for those given one, and
    ``neuron_synapse_pairs`` for the pairs, found in the ASTs."""
    syn_files = [f["path"] for f in job["files"] if any(m.endswith("synapse") for m in f["models"])]
    if not syn_files:
        return {}, []
    err = fe.run(syn_files, job["target"] + "_check", "NONE", job["module"], "", None)
    diags = fe.diagnostics(names)
    if err or any(d["severity"] == "error" for d in diags):
        return {}, diags or [_error(f"NESTML failed: {err}")]
    synapses = {m.get_name(): m for m in fe.parsed if m.get_name().endswith("synapse")}
    file_of = {m: f["name"] for f in job["files"] for m in f["models"]}
    weights, problems = {}, []
    given = job.get("weight_variables", {})
    for name, model in synapses.items():
        variables = {d["name"] for d in _declarations(model.get_state_blocks() + model.get_parameters_blocks())}
        has = ", ".join(sorted(variables)) or "none"
        if name in given:
            if given[name] not in variables:
                problems.append(_error(f"synapse '{name}' has no variable '{given[name]}' to use as its weight "
                                       f"(its state and parameters: {has})", file_of.get(name)))
            weights[name] = given[name]
            continue
        weight = next((w for w in ("w", "weight", "W") if w in variables), None)
        if weight is None:
            problems.append(_error(f"synapse '{name}' has no weight variable: declare a state or parameter named "
                                   f"'w', or name one with --weight-variable {name}:VARIABLE (it has: {has})",
                                   file_of.get(name)))
        else:
            weights[name] = weight
    delays = {}
    for name, variable in job.get("delay_variables", {}).items():
        variables = {d["name"] for d in _declarations(synapses[name].get_state_blocks()
                                                      + synapses[name].get_parameters_blocks())}
        if variable not in variables:
            problems.append(_error(f"synapse '{name}' has no variable '{variable}' to use as its delay "
                                   f"(its state and parameters: {', '.join(sorted(variables)) or 'none'})",
                                   file_of.get(name)))
        delays[name] = variable
    pairs = []
    for pair in job["pairs"]:
        syn = synapses[pair["synapse"]]
        spike_ports = [p["name"] for p in _input_ports(syn) if p["kind"] == "spike"]
        ports = pair.get("post_ports") or [p for p in spike_ports if p.startswith("post")]
        unknown = [p for p in ports if p not in {q["name"] for q in _input_ports(syn)}]
        if not ports or unknown:
            problems.append(_error(
                f"pair {pair['neuron']}:{pair['synapse']}: " +
                (f"synapse has no input port {unknown[0]!r}" if unknown else "no postsynaptic spike port found") +
                f"; its spike ports are {', '.join(spike_ports) or 'none'}: name the post ports as "
                f"--pair {pair['neuron']}:{pair['synapse']}:PORT", file_of.get(pair["synapse"])))
            continue
        pairs.append({"neuron": pair["neuron"], "synapses": {pair["synapse"]: {"post_ports": ports}}})
    opts: dict = {}
    if weights:
        opts["weight_variable"] = weights
    if delays:
        opts["delay_variable"] = delays
    if pairs:
        opts["neuron_synapse_pairs"] = pairs
    return opts, problems


def _error(message: str, file: str | None = None, code: str | None = None) -> dict:
    return {"file": file, "line": None, "column": None, "end_line": None, "end_column": None,
            "severity": "error", "message": message, "code": code}


def run_job(job: dict) -> dict:
    fe = _Frontend(job["nest_version"])
    names = {Path(f["path"]).name: f["name"] for f in job["files"]}
    syn_opts, diags = _synapse_options(fe, job, names)
    if any(d["severity"] == "error" for d in diags):
        return {"ok": False, "diagnostics": diags, "models": []}
    codegen_opts = {"nest_path": job["nest_path"], "nest_version": job["nest_version"], **syn_opts}
    files = [f["path"] for f in job["files"]]
    err = fe.run(files, job["target"], "NEST", job["module"], job["suffix"], codegen_opts)
    diags = fe.diagnostics(names)
    captured = list(fe.captured)
    failed = err is not None or any(d["severity"] == "error" for d in diags) or not captured
    if failed and len(files) > 1:
        # one file's syntax error hides the others' errors: check each file on its own
        each: list[dict] = []
        for f in files:
            fe.run([f], job["target"] + "_check", "NONE", job["module"], "", None)
            each += fe.diagnostics(names)
        if any(d["severity"] == "error" for d in each):
            diags = each
    if err is not None and "Synapses only support one spiking input port" in err:
        diags.append(_error("a synapse with a postsynaptic spike port (e.g. stdp_synapse) cannot be built alone: "
                            "pair it with the neuron it connects to, e.g. --pair iaf_psc_exp_neuron:stdp_synapse "
                            f"(NESTML: {err})"))
    elif err is not None:
        diags.append(_error(f"NESTML failed: {err}"))
    elif failed and not any(d["severity"] == "error" for d in diags):
        diags.append(_error("NESTML generated no code and reported no error"))
    return {"ok": not failed, "diagnostics": diags,
            "models": [describe(m, _source_lines(job, m.get_name())) for m in captured] if not failed else []}


def _source_lines(job: dict, nestml_name: str) -> list[str] | None:
    """The lines of the file that declares ``nestml_name`` (a paired model's: its neuron's or synapse's)."""
    base = nestml_name.split(PAIR_MARK)[0]
    for f in job["files"]:
        if base in f["models"]:
            try:
                return Path(f["path"]).read_text(encoding="utf-8").split("\n")
            except OSError:
                return None
    return None


def run_check(job: dict) -> dict:
    """NESTML's checks alone (parsing and context conditions, no code): each file on its own, so that one
    file's syntax error hides nothing of the others'."""
    fe = _Frontend(job["nest_version"])
    names = {Path(f["path"]).name: f["name"] for f in job["files"]}
    diags: list[dict] = []
    models: list[dict] = []
    for f in job["files"]:
        err = fe.run([f["path"]], job["target"], "NONE", "checkmodule", "", None)
        diags += fe.diagnostics(names)
        if err is not None:
            diags.append(_error(f"NESTML failed: {err}", f["name"]))
        elif job.get("describe"):
            lines = Path(f["path"]).read_text(encoding="utf-8").split("\n")
            models += [dict(describe(m, lines), values=_values(m)) for m in fe.parsed]
    return {"ok": not any(d["severity"] == "error" for d in diags), "diagnostics": diags, "models": models}


def _values(model: Any) -> dict:
    """Starting values of the parameters and state (internals are worked out on the way, not returned)."""
    from nestml_registry.compiler.spec_values import values_of

    env: dict[str, Any] = {}
    params = values_of(model.get_parameters_blocks(), env)
    values_of(model.get_internals_blocks(), env)
    return {**params, **values_of(model.get_state_blocks(), env)}


def _preload() -> None:
    """The imports that make up most of a cold start (about 0.8 s): the first thing every run does (a
    spare, before its job comes)."""
    import pynestml.codegeneration.nest_code_generator
    import pynestml.frontend.pynestml_frontend  # noqa: F401


def _take_job_from_stdin() -> list[str] | None:
    line = sys.stdin.readline()
    if not line.strip():
        return None  # the parent no longer needs this spare
    request = json.loads(line)
    os.chdir(request["cwd"])
    return [request["job"], request["result"]]


def main(argv: list[str]) -> int:
    collect_garbage_rarely()
    _preload()
    gc.freeze()  # the modules just imported: never scanned again
    if argv and argv[0] == "--stdin":
        taken = _take_job_from_stdin()
        if taken is None:
            return 0
        argv = taken
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        result = run_check(job) if job.get("check_only") else run_job(job)
    except MemoryError:  # the address-space limit of the sandbox: the parent names it
        result = {"ok": False, "models": [], "diagnostics": [_error("code generation ran out of memory",
                                                                    code="OUT_OF_MEMORY")]}
    except Exception as exc:  # a crash inside NESTML: report it as a diagnostic, keep the traceback in the log
        traceback.print_exc()
        result = {"ok": False, "models": [],
                  "diagnostics": [_error(f"NESTML crashed: {type(exc).__name__}: {exc}")]}
    write_result(result_path, result)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
