"""Hostile models, built for real: nothing of a comment or a string reaches the generated C++, no
injected command runs, build processes are sandboxed while they run, and a model that makes code
generation explode fails its build with a clear message while the next build succeeds."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import DATA

from nestml_registry.compiler.children import CodegenRunner
from nestml_registry.compiler.generated_check import check_generated
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest, Pair
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sandbox import Limits, SandboxConfig
from nestml_registry.compiler.sanitise import Sanitised, sanitise
from nestml_registry.compiler.sources import Source

pytestmark = pytest.mark.slow
HOSTILE = DATA / "hostile"


def _build_keeping_code(compiler: Compiler, request: BuildRequest) -> tuple[BuildResult, dict[str, str]]:
    """Build, and keep the generated C++ (read while the module loads, before the work folder goes)."""
    code: dict[str, str] = {}
    key = compiler.key(request)

    def progress(stage: str) -> None:
        if stage == "loading in NEST":
            for work in compiler.cache.work_dir.iterdir():
                target = work / "target"
                if work.is_dir() and target.is_dir() and (target / f"{request.module}.so").exists():
                    code.update({p.name: p.read_text(errors="replace") for p in target.iterdir()
                                 if p.suffix in (".cpp", ".h")})

    compiler.cache.forget(key)
    return compiler.compile(request, progress), code


def test_comments_in_every_position_never_reach_the_code(compiler: Compiler) -> None:
    for planted in Path("/tmp").glob("PWNED*"):
        planted.unlink()
    source = Source.from_path(HOSTILE / "comments_neuron.nestml")
    result, code = _build_keeping_code(compiler, BuildRequest.create([source]))
    assert result.ok, [d.format() for d in result.diagnostics]
    assert code, "no generated code seen"
    for name, text in code.items():
        assert "pwn_" not in text and "std::system" not in text and "PWNED" not in text, name
    assert not list(Path("/tmp").glob("PWNED*"))  # loaded in NEST: nothing ran
    (model,) = result.models
    tau = next(p for p in model.parameters if p["name"] == "tau_m")
    assert "static inline int pwn_tau_" in tau["comment"]  # the registry still has the comment as written


def test_a_print_string_that_would_escape_its_quotes_is_refused(compiler: Compiler) -> None:
    result = compiler.compile(BuildRequest.create([Source.from_path(HOSTILE / "print_neuron.nestml")]))
    assert not result.ok
    (d,) = result.diagnostics
    assert d.format().startswith("print_neuron.nestml:10:17: error: a string literal may not contain a backslash")
    assert result.log_path is None  # refused before anything ran


def test_an_exploding_model_fails_at_the_memory_limit_and_the_next_build_works(compiler: Compiler) -> None:
    config = dataclasses.replace(compiler.config, sandbox=SandboxConfig(limits=Limits(memory_bytes=1536 * 1024 ** 2)))
    small = Compiler(config, toolchain=compiler.toolchain)
    seen: dict[str, object] = {}
    stop = threading.Event()

    def watch() -> None:  # what /proc says about code generation while it runs
        while not stop.is_set():
            for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if b"nestml_registry.compiler.codegen" in cmd and cmd[0].endswith(b"python"):
                        status = Path(f"/proc/{pid}/status").read_text()
                        seen["uid"] = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1]
                        seen["net"] = os.readlink(f"/proc/{pid}/ns/net")
                        seen["db_visible"] = Path(f"/proc/{pid}/root{compiler.config.cache_dir}/builds").exists()
                        return
                except (OSError, StopIteration):
                    continue
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = small.compile(BuildRequest.create([Source.from_path(HOSTILE / "explode_neuron.nestml")]))
    finally:
        stop.set()
        watcher.join()
    assert not result.ok
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "OUT_OF_MEMORY" and "memory limit of 1536 MiB" in d.message, d.message
    assert seen and seen["uid"] != "0" and seen["net"] != os.readlink("/proc/self/ns/net"), seen
    assert seen["db_visible"] is False  # the build cache is not in the step's world
    after = small.compile(BuildRequest.create([Source.from_path(DATA / "tiny_neuron.nestml")]))
    assert after.ok, [x.format() for x in after.diagnostics]


def _shipped_requests(models_dir: Path) -> list[BuildRequest]:
    """Every shipped model in a few modules: the neurons in four, the synapses that build alone in one, the
    others paired with iaf_psc_exp_neuron in one. Two shipped synapses cannot be built by the registry:
    neuromodulated_stdp_synapse needs a volume transmitter port, which pairs cannot name yet, and
    stdsp_synapse needs a neuron with a dendritic spike trace (dAP_trace), which no shipped neuron has."""
    neurons = sorted((models_dir / "neurons").glob("*.nestml"))
    unbuildable = ("neuromodulated_stdp_synapse", "stdsp_synapse")
    synapses = sorted(p for p in (models_dir / "synapses").glob("*.nestml") if p.stem not in unbuildable)
    alone = [p for p in synapses if p.stem in ("static_synapse", "noisy_synapse", "tsodyks_synapse")]
    paired = [p for p in synapses if p not in alone]
    requests = [BuildRequest.create([Source.from_path(p) for p in neurons[i::4]], module=f"scan{i}_module")
                for i in range(4)]
    requests.append(BuildRequest.create([Source.from_path(p) for p in alone], module="scanalone_module"))
    requests.append(BuildRequest.create([Source.from_path(models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"),
                                         *(Source.from_path(p) for p in paired)], module="scanpairs_module",
                                        pairs=[Pair("iaf_psc_exp_neuron", p.stem) for p in paired]))
    return requests


def _generated_code(runner: CodegenRunner, request: BuildRequest, log: Path) -> tuple[dict[str, Sanitised], str]:
    sanitised = {s.name: sanitise(s.text, s.name) for s in request.sources}
    ws = runner.workspace(request.module)
    try:
        outcome = runner.run(request, sanitised, ws, log)
        assert outcome.ok, (request.module, [d.format() for d in outcome.diagnostics if d.severity == "error"])
        assert not check_generated(ws.path / "target"), request.module  # what the templates produce passes
        return sanitised, "\n".join(p.read_text(errors="replace") for p in (ws.path / "target").rglob("*")
                                    if p.suffix in (".cpp", ".h"))
    finally:
        ws.remove()


def test_generated_code_that_templates_never_produce_is_refused_before_it_compiles(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "ok_neuron.cpp").write_text('#include "ok_neuron.h"\n#include <cmath>\nx = gsl_odeiv_system;\n')
    assert not check_generated(target)
    (target / "bad_neuron.cpp").write_text('#include "../../etc/x.h"\n__attribute__((constructor)) static void f() '
                                           '{ std::system("id"); }\n')
    found = [d.message for d in check_generated(target)]
    assert len(found) == 2 and "bad_neuron.cpp:1) includes" in found[0] and "uses __attribute__" in found[1]


def test_no_comment_of_a_shipped_model_reaches_its_generated_code(compiler: Compiler, models_dir: Path,
                                                                   tmp_path: Path) -> None:
    """NESTML's code generation for every shipped model (no C++ compile), scanned for comment text."""
    spec = importlib.util.find_spec("pynestml")  # its templates' own text (the licence header) is not a leak
    assert spec is not None and spec.origin is not None
    templates = "\n".join(p.read_text(errors="replace") for p in Path(spec.origin).parent.rglob("*.jinja2"))
    requests = _shipped_requests(models_dir)
    runner = compiler.codegen
    with ThreadPoolExecutor(max_workers=2) as pool:  # each is a child process of its own
        generated = list(pool.map(lambda r: _generated_code(runner, r, tmp_path / f"{r.module}.log"),
                                  requests))
    checked = 0
    for sanitised, code in generated:
        for name, s in sanitised.items():
            for line, comment in s.comments.items():
                text = comment.strip()
                # long enough not to be a name or a formula the model also has
                if len(text) >= 20 and text not in templates:
                    assert text not in code, f"{name}:{line}: comment reached the generated code: {text!r}"
                    checked += 1
    assert checked > 300


def _codegen_unsanitised(runner: CodegenRunner, name: str, text: str, log: Path) -> tuple[bool, list[str], str]:
    """Code generation of ``text`` as written (the sanitiser bypassed): ok, error messages, generated code."""
    source = Source.from_text(f"{name}.nestml", text)
    request = BuildRequest.create([source], module=f"{name.replace('-', '')}_module")
    ws = runner.workspace(request.module + name)
    try:
        outcome = runner.run(request, {source.name: Sanitised(text)}, ws, log)
        code = "\n".join(p.read_text(errors="replace") for p in (ws.path / "target").rglob("*")
                         if p.suffix in (".cpp", ".h"))
        return outcome.ok, [d.message for d in outcome.diagnostics if d.severity == "error"], code
    finally:
        ws.remove()


def test_no_model_text_is_evaluated_as_python_in_any_placement(compiler: Compiler, tmp_path: Path) -> None:
    """Second line of defence: with the sanitiser bypassed, SymPy's parser in the child evaluates nothing of a
    model as Python, for strings in each placement and for functions named after Python's builtins."""
    from sympy_routes import builtin_name_routes, string_routes

    routes = [(f"s-{k}", v) for k, v in string_routes().items()] + \
             [(f"b-{k}", v) for k, v in builtin_name_routes().items()]
    runner = compiler.codegen
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip([n for n, _ in routes], pool.map(
            lambda r: _codegen_unsanitised(runner, r[0], r[1], tmp_path / f"{r[0]}.log"), routes), strict=True))
    for name, (ok, errors, code) in outcomes.items():
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert "PWNED" not in log and "PWNED" not in code, name  # no payload ran
        if not ok:  # refused: said why, no traceback of Python's own
            assert errors, name
    _, errors, _ = outcomes["s-ode"]
    assert any("string reached SymPy's parser" in e for e in errors), errors
    ok, errors, code = outcomes["b-function"]
    # id(V_m) stays the model's own function: never the address of a SymPy object
    assert ok, errors
    assert "id(" in code and not __import__("re").search(r"\b\d{9,}\b", code)


LIMITS_CHILD = """
import json, sys
from pathlib import Path
from nestml_registry.compiler.sandbox import Limits, Sandbox, SandboxConfig, python_paths
from nestml_registry.compiler.workspace import Workspace

steps = json.loads(sys.argv[2])
box = Sandbox(SandboxConfig(limits=Limits(1024 ** 3, 1024 ** 3, 64, 256 * 1024 ** 2)), python_paths())
out = {"group": box.group() is not None}
for name, code in steps.items():
    ws = Workspace.create(Path(sys.argv[1]), name, box, {})
    log = Path(sys.argv[1]) / f"{name}.log"
    step = ws.run(name, [sys.executable, "-c", code], log=log, timeout=120)
    out[name] = {"returncode": step.returncode, "log": log.read_text(errors="replace")[-3000:]}
    ws.remove()
box.close()
print(json.dumps(out))
"""
HOSTILE_STEPS = {
    "memory": ("import os, time\nfor i in range(3):\n    if os.fork() == 0:\n        break\n"
               "x = b'1' * (450 * 1024 ** 2)\ntime.sleep(5)\n"),
    "disk": ("import os\nfor i in range(200):\n    with open(f'f{i}', 'wb') as fh:\n"
             "        fh.write(os.urandom(8 * 1024 ** 2))\n"),
    # last: its children may outlive it for a moment, in the group the next step would share
    "fork": ("import os, time\nfor i in range(300):\n    if os.fork() == 0:\n        time.sleep(5)\n"
             "        os._exit(0)\n"),
}


def test_a_build_past_its_limits_fails_alone_while_a_concurrent_build_succeeds(compiler: Compiler,
                                                                                tmp_path: Path) -> None:
    """Steps that fork, allocate and write past the build's limits (run in a worker process of their own, with
    a build group of their own) are stopped, each with the setting's name, while a real build of another
    worker (this process) runs at the same time and succeeds: limits are per build, not per user."""
    import json
    import subprocess
    import sys

    from nestml_registry.compiler.sandbox import MEMORY_NOTE, PROCESS_NOTE

    if os.geteuid() != 0 or not Path("/sys/fs/cgroup").is_dir():
        pytest.skip("build groups need root and a cgroup file system")
    hostile = ThreadPoolExecutor(max_workers=1).submit(
        subprocess.run, [sys.executable, "-c", LIMITS_CHILD, str(tmp_path), json.dumps(HOSTILE_STEPS)],
        capture_output=True, text=True, timeout=600)
    time.sleep(1.0)  # the hostile steps are under way
    text = (DATA / "tiny_neuron.nestml").read_text().replace("model tiny_neuron:", "model tiny_limits_neuron:")
    request = BuildRequest.create([Source.from_text("tiny_limits.nestml", text)], module="limitsmodule")
    compiler.cache.forget(compiler.key(request))
    result = compiler.compile(request)
    assert result.ok, [d.format() for d in result.diagnostics]
    proc = hostile.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["group"] is True
    assert out["fork"]["returncode"] != 0 and PROCESS_NOTE in out["fork"]["log"], out["fork"]
    assert MEMORY_NOTE in out["memory"]["log"], out["memory"]  # the kernel killed one of its processes (which
    # one is its choice: the step fails when it is the step's own, as a compiler's would be)
    assert out["disk"]["returncode"] != 0 and "STEP_WORK_BYTES" in out["disk"]["log"], out["disk"]
