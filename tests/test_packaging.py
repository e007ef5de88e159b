"""What a non-editable install of a clean checkout puts in site-packages: one package, nestml_registry,
with the four parts as its subpackages and nothing of ours under a generic top-level name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("compiler", "registry", "service", "simulator", "cli")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (the build leaves nothing in the repository)."""
    src = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("nestml_registry", *PARTS):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("nestml_registry-*.whl")
    return path


@pytest.mark.slow  # builds a wheel
def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"nestml_registry"}
    for part in PARTS:
        assert f"nestml_registry/{part}/__init__.py" in names
    assert "nestml_registry/registry/migrations/script.py.mako" in names
    assert any(n.startswith("nestml_registry/registry/migrations/versions/0001") for n in names)
    assert "nestml_registry/service/api/routes/__init__.py" in names
    for page_file in ("templates/base.html", "templates/model.html", "static/app.js", "static/style.css"):
        assert f"nestml_registry/service/api/web/{page_file}" in names, page_file  # the pages work installed
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "nestml-registry = nestml_registry.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.slow  # installs it into a fresh environment
def test_installed_only_the_namespace_imports(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin") \
        == ["nestml_registry"]
    code = (
        "import importlib.util, sys\n"
        "import nestml_registry, nestml_registry.cli.main\n"
        "from nestml_registry import use_registry\n"
        f"assert nestml_registry.cli.main.__file__.startswith({str(target)!r}), nestml_registry.__file__\n"
        f"print([n for n in {PARTS!r} if importlib.util.find_spec(n) is not None])\n"
        "print('nest' in sys.modules, 'pynestml' in sys.modules, 'sqlalchemy.engine' in sys.modules)\n"
    )
    # -I: no user site, no PYTHONPATH, no current directory (which would be the checkout)
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + code],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["[]", "False False False"]


def test_the_compose_files_image_tag_is_this_release() -> None:
    """docker/compose.yaml names its image ${REGISTRY_IMAGE:-nestml-registry}:${REGISTRY_TAG:-<version>}."""
    import re
    from importlib.metadata import version

    text = (ROOT / "docker" / "compose.yaml").read_text()
    tags = set(re.findall(r"image: \$\{REGISTRY_IMAGE:-nestml-registry\}:\$\{REGISTRY_TAG:-([^}]+)\}", text))
    assert tags == {version("nestml-registry")}, tags
    assert "nestml-registry:latest" not in text
