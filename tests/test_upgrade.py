"""``nestml-registry upgrade``: NESTML 7/8 text rewritten for NESTML 9, checked by NESTML itself, and the
upgraded models simulating exactly as the hand-upgraded ones."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DATA, run_nest_script
from test_cli import cli

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source
from nestml_registry.compiler.upgrade import FREE_UNIT, upgrade

OLD = DATA / "nestml8"
TUTORIAL = OLD / "bmtk_tutorial_izh_neuron.nestml"


def free_units(texts: dict[str, str]) -> list[Diagnostic]:
    """A stand-in for NESTML's check that knows one thing: the free-standing ' mV' and ' ms' of these tests."""
    out = []
    for name, text in texts.items():
        for i, line in enumerate(text.split("\n"), 1):
            for unit in ("mV", "ms"):
                col = line.split("#")[0].find(f"/ {unit}")
                if col >= 0:
                    out.append(Diagnostic(name, i, col + 3, i, col + 3, "error",
                                          f"No free-standing physical units allowed ({unit})", FREE_UNIT))
    return out


def test_rewrites_keep_comments_layout_and_lines() -> None:
    text = ('"""\nmy neuron\n  indented\n"""\nneuron my:\n    state:\n        V_m mV = -70 mV   # keep / mV here\n'
            "    equations:\n        V_m' = (-V_m / mV) / ms   # a comment\n")
    (up,) = upgrade({"my.nestml": text}, free_units)
    assert up.ok and up.changed
    assert up.text.split("\n") == [
        "#", "# my neuron", "#   indented", "#", "model my:", "    state:",
        "        V_m mV = -70 mV   # keep / mV here", "    equations:",
        "        V_m' = (-V_m / 1 mV) / 1 ms   # a comment", ""]
    assert [line for line, _ in up.changes] == [1, 5, 9]


def test_nestml7_synapse_is_renamed_and_emits() -> None:
    text = ("synapse stdp:\n    parameters:\n        w real = 1 @nest::weight\n        d ms = 1 ms @nest::delay\n"
            "    equations:\n        x' = -x / tau\n    onReceive(pre):\n        deliver_spike(w, d)\n")
    (up,) = upgrade({"stdp.nestml": text}, lambda texts: [])
    assert "model stdp_synapse:" in up.text and "emit_spike(w)\n" in up.text
    assert up.text.endswith("\n    output:\n        spike\n\n    update:\n        integrate_odes()\n")
    assert any("stdp_synapse_nestml, not stdp_nestml" in what for _, what in up.changes)


def test_text_already_nestml9_is_left_alone() -> None:
    text = (DATA / "tiny_neuron.nestml").read_text()
    (up,) = upgrade({"tiny.nestml": text}, free_units)
    assert not up.changed and up.changes == [] and up.ok


def test_a_position_that_is_not_the_unit_is_never_guessed() -> None:
    wrong = [Diagnostic("x.nestml", 1, 2, 1, 2, "error", "No free-standing physical units allowed (mV)", FREE_UNIT)]
    (up,) = upgrade({"x.nestml": "model x:\n"}, lambda texts: wrong)
    assert not up.changed and not up.ok  # reported, not rewritten


def test_a_typo_that_nestml_reads_as_a_unit_is_never_upgraded() -> None:
    """'u += dd' (meant 'd'): NESTML 9 reads 'dd' as a unit (deci-day); numbering it would publish a model that
    means something else, so upgrade refuses it and names the declared 'd', leaving the text as it was."""
    text = ("model izh_neuron:\n    parameters:\n        d real = 8\n    state:\n        u real = 0\n"
            "    onCondition(u > 30):\n        u += dd\n")
    col = text.split("\n")[6].index("dd") + 1

    def check(texts: dict[str, str]) -> list[Diagnostic]:
        return [Diagnostic("izh.nestml", 7, col, 7, col, "error", "No free-standing physical units allowed (dd)",
                           FREE_UNIT)] if "u += dd" in texts["izh.nestml"] else []

    from nestml_registry.compiler.hints import explain_all

    # as NESTML reports it, and as Compiler.check returns it (the hint already after NESTML's message)
    for checked in (check, lambda texts: explain_all(check(texts))):
        (up,) = upgrade({"izh.nestml": text}, checked)
        assert not up.changed and not up.ok
        (d,) = up.diagnostics
        assert d.line == 7 and "did you mean 'd'?" in d.message and "leaves it as it is" in d.message
    # a push of such text is not sent to upgrade either: the message says what the name most likely is
    (told,) = explain_all(check({"izh.nestml": text}))
    assert "'dd' is no unit models use" in told.message and "upgrade" not in told.message
    # a unit that models use is still numbered
    (fine,) = upgrade({"x.nestml": "model x:\n    equations:\n        V' = -V / ms\n"}, free_units)
    assert fine.ok and "/ 1 ms" in fine.text


@pytest.mark.slow
def test_tutorial_text_upgrades_to_the_hand_upgraded_text(registry_home: Path, tmp_path: Path) -> None:
    proc = cli(registry_home, "upgrade", str(TUTORIAL))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == TUTORIAL.with_suffix(".nestml9").read_text()
    assert proc.stderr.count("upgraded: free-standing unit") == 3  # lines 11, 12 and 32: nine units
    assert f"{TUTORIAL}:11: upgraded: free-standing units written '1 mV', '1 mV', '1 GOhm', '1 ms'" in proc.stderr
    # --in-place: the file rewritten, then nothing left to do; a text NESTML 9 refuses for other reasons: exit 1
    copy = tmp_path / "izh.nestml"
    shutil.copy(TUTORIAL, copy)
    assert cli(registry_home, "upgrade", str(copy), "--in-place").returncode == 0
    assert copy.read_text() == TUTORIAL.with_suffix(".nestml9").read_text()
    again = cli(registry_home, "upgrade", str(copy), "--in-place")
    assert again.returncode == 0 and "nothing to upgrade" in again.stderr
    broken = tmp_path / "broken.nestml"
    broken.write_text(TUTORIAL.read_text().replace("c mV = -65 mV", "c mV = -65 mV + I_foo"))
    proc = cli(registry_home, "upgrade", str(broken))
    assert proc.returncode == 1
    assert '"I_foo"' in proc.stderr and "need a person" in proc.stderr
    assert "model custom_izh_neuron:" in proc.stdout  # the text is still printed (NESTML's undefined-symbol error
    # hides the free-standing units from it: a person fixes the error, then upgrades again)
    assert cli(registry_home, "upgrade", str(tmp_path / "missing.nestml")).returncode == 2
    assert cli(registry_home, "upgrade", str(copy), str(broken)).returncode == 2  # two files need --in-place


@pytest.mark.slow
def test_nestml7_models_pass_nestml9_after_upgrade(compiler: Compiler) -> None:
    texts = {p.name: p.read_text() for p in sorted(OLD.glob("*nestml7.nestml"))}
    ups = upgrade(texts, compiler.check)
    assert all(up.ok and up.changed for up in ups), [d.format() for up in ups for d in up.diagnostics]


COMPARE = r"""
import json, sys, nest
nest.set_verbosity("M_ERROR")
out = {}
for model in sys.argv[2:]:
    runs = []
    for I_e, rate in ((5.0, 0.0), (10.0, 300.0), (20.0, 800.0)):
        nest.ResetKernel()
        nest.Install(sys.argv[1].split(",")[0]); nest.Install(sys.argv[1].split(",")[1])
        n = nest.Create(model, params={"I_e": I_e})
        pg = nest.Create("poisson_generator", params={"rate": rate})
        sr = nest.Create("spike_recorder")
        nest.Connect(pg, n, syn_spec={"weight": 2.0})
        nest.Connect(n, sr)
        nest.Simulate(1000.0)
        runs.append([round(t, 6) for t in sr.events["times"]])
    out[model] = runs
print(json.dumps(out))
"""


@pytest.mark.slow
def test_upgraded_nestml8_model_simulates_as_nestml9s_own(compiler: Compiler, izh_build: BuildResult) -> None:
    """NESTML 8.3's izhikevich_neuron, upgraded, against the one NESTML 9 ships (upgraded by NESTML's authors)."""
    (up,) = upgrade({"izhikevich_neuron.nestml": (OLD / "izhikevich_neuron.nestml").read_text()}, compiler.check)
    assert up.ok and up.changed
    result = compiler.compile(BuildRequest.create([Source.from_text("izhikevich_neuron.nestml", up.text)],
                                                  suffix="_upgraded_nestml"))
    assert result.ok, [d.format() for d in result.diagnostics]
    modules = ",".join(str(Path(r.module_path or "").with_suffix("")) for r in (izh_build, result))
    names = ("izhikevich_neuron_nestml", "izhikevich_neuron_upgraded_nestml")
    spikes = json.loads(run_nest_script(COMPARE, modules, *names))
    assert all(spikes["izhikevich_neuron_nestml"])
    assert spikes["izhikevich_neuron_upgraded_nestml"] == spikes["izhikevich_neuron_nestml"]


def test_cli_refuses_several_files_to_stdout(tmp_path: Path) -> None:
    from server_fixtures import CLI

    a, b = tmp_path / "a.nestml", tmp_path / "b.nestml"
    a.write_text("model a:\n")
    b.write_text("model b:\n")
    proc = subprocess.run([*CLI, "upgrade", str(a), str(b)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "give --in-place" in proc.stderr
