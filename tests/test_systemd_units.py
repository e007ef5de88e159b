"""The systemd units (systemd/) as scripts/systemd-units.sh installs them: systemd's own checker accepts
them, they run this checkout's nestml-registry with arguments its CLI takes, and a worker is given time to
finish its build and a control group to bound its builds in."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from nestml_registry.cli.main import parser

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("units")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "systemd-units.sh"), str(dest)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dest


def _service(path: Path) -> configparser.SectionProxy:
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read(path)
    return ini["Service"]


def test_systemd_accepts_the_units(units: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: scripts/setup.sh test installs Debian's systemd")
    proc = subprocess.run([analyze, "verify", "--man=no", "./nestml-registry.service",
                           "./nestml-registry-worker@1.service"], cwd=units, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@pytest.mark.parametrize("unit", ["nestml-registry.service", "nestml-registry-worker@.service"])
def test_the_units_run_this_checkouts_cli(units: Path, unit: str) -> None:
    service = _service(units / unit)
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == str(ROOT / ".venv" / "bin" / "nestml-registry")
    parser().parse_args(argv[1:])  # the CLI takes these arguments
    assert service["User"] == "nestml-registry" and service["NoNewPrivileges"] == "yes"
    assert "@ROOT@" not in (units / unit).read_text()


def test_a_worker_finishes_its_build_when_stopped(units: Path) -> None:
    service = _service(units / "nestml-registry-worker@.service")
    assert service["KillSignal"] == "SIGTERM" and service["TimeoutStopSec"] == "15min"
    assert service["Delegate"] == "yes"
