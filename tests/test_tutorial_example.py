"""examples/tutorial/ end to end, as docs/guides/bmtk.md tells a BMTK user to run it: the tutorial's NESTML 8 model
upgraded, pushed to a real registry, and the tutorial's four examples run through the registry and with
plain BMTK, spike for spike."""

from __future__ import annotations

import subprocess
import sys

import pytest
from server_fixtures import ROOT, Server, client_env, server_fixture

pytestmark = pytest.mark.slow
server = server_fixture("tutorial-server")


def test_the_tutorial_example_runs_all_four_examples_identically(server: Server, tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "tutorial" / "run_tutorial.py"),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=1200,
                          cwd=tmp_path, env=client_env(server.env, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-4000:])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("example ")]
    assert len(lines) == 4 and all(line.endswith("identical") for line in lines), proc.stdout
    assert "pushed: custom_izh_neuron_nestml@1" in proc.stdout
    assert "upgraded: free-standing units written '1 mV', '1 mV', '1 GOhm', '1 ms'" in proc.stderr
    assert "is never called" not in proc.stderr  # the hook found nestml:custom_izh_neuron
