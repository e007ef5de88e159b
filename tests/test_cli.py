"""The CLI as a user runs it: exit status, compiler-style diagnostics, --json."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import DATA
from server_fixtures import CLI

from nestml_registry.compiler.result import BuildResult

TINY = (DATA / "tiny_neuron.nestml").read_text()


def cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NESTML_REGISTRY_HOME=str(home))
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_compile_cached_json(registry_home: Path, izh_build: BuildResult, models_dir: Path, tmp_path: Path) -> None:
    src = models_dir / "neurons" / "izhikevich_neuron.nestml"
    proc = cli(registry_home, "compile", str(src), "--json", "--out", str(tmp_path / "mods"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "succeeded"
    assert doc["module"]["name"] == "izhikevich_neuron_nestml_module"
    assert doc["module"]["sha256"] == izh_build.module_sha256
    assert doc["module"]["path"].startswith(str(tmp_path / "mods"))
    assert Path(doc["module"]["path"]).is_file()
    assert doc["models"] == [{"name": "izhikevich_neuron_nestml", "kind": "neuron", "version": None}]
    for d in doc["diagnostics"]:
        assert set(d) >= {"file", "line", "column", "end_line", "end_column", "severity", "message"}


def test_compile_human_output(registry_home: Path, izh_build: BuildResult, models_dir: Path) -> None:
    proc = cli(registry_home, "compile", str(models_dir / "neurons" / "izhikevich_neuron.nestml"))
    assert proc.returncode == 0
    assert "izhikevich_neuron_nestml" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == izh_build.module_path


@pytest.mark.slow
def test_failed_compile_exits_1_with_compiler_style_diagnostics(registry_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "izh_old.nestml"
    bad.write_text(TINY.replace("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / mV) / ms"))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "V_m' =" in t)
    proc = cli(registry_home, "compile", str(bad))
    assert proc.returncode == 1
    assert f"izh_old.nestml:{line}:" in proc.stderr
    assert ": error: No free-standing physical units allowed (mV): write '1 mV'" in proc.stderr
    assert "nestml-registry upgrade izh_old.nestml --in-place" in proc.stderr
    assert proc.stdout == ""
    proc = cli(registry_home, "compile", str(bad), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed" and doc["module"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compile", "missing.nestml"], "no such file"),
        (["compile", "{empty}"], "file is empty"),
        (["compile", "{tiny}", "--module", "bad-name"], "end in 'module'"),
        (["compile", "{tiny}", "--pair", "nope"], "invalid pair"),
        (["compile", "{tiny}", "--pair", "tiny_neuron:stdp_synapse"], "no synapse model 'stdp_synapse'"),
    ],
)
def test_bad_input_exits_2_with_one_line(registry_home: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty.nestml").write_bytes(b"")
    (tmp_path / "tiny.nestml").write_text(TINY)
    args = [a.format(empty=tmp_path / "empty.nestml", tiny=tmp_path / "tiny.nestml") for a in args]
    proc = cli(registry_home, *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nestml-registry: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr
    proc = cli(registry_home, *args, "--json", cwd=tmp_path)
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]  # the API's shape, with the error's own code
    assert message in error["message"] and error["code"] == "invalid_input" and error["details"] == {}


def test_usage_error_exits_2(registry_home: Path) -> None:
    assert cli(registry_home, "compile").returncode == 2
    assert cli(registry_home, "frobnicate").returncode == 2


def test_version(registry_home: Path) -> None:
    from importlib.metadata import version

    proc = cli(registry_home, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"nestml-registry {version('nestml-registry')}"
