"""Every way a compile can fail gives diagnostics a person can act on, and no module."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA, nestml

from nestml_registry.compiler.config import CompilerConfig
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source

TINY = (DATA / "tiny_neuron.nestml").read_text()


def tiny(old: str, new: str, model: str = "tiny_neuron") -> str:
    assert old in TINY
    return TINY.replace(old, new).replace("model tiny_neuron:", f"model {model}:")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def errors(result: BuildResult) -> list:
    return [d for d in result.diagnostics if d.severity == "error"]


def assert_failed(result: BuildResult) -> None:
    assert result.status == "failed"
    assert result.module_sha256 is None and result.module_path is None
    assert errors(result), result.diagnostics


def test_syntax_error_names_file_and_line(compiler: Compiler) -> None:
    text = tiny("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / tau_m + I_e / C_m")
    result = compiler.compile(BuildRequest.create([nestml(text, "broken.nestml")]))
    assert_failed(result)
    (err,) = errors(result)
    assert err.file == "broken.nestml"
    # ANTLR reports where it noticed the missing ')': the broken line or the next non-blank one
    assert line_of(text, "V_m' =") <= err.line <= line_of(text, "V_m' =") + 2
    assert err.column is not None and err.column >= 1
    assert err.format().startswith(f"broken.nestml:{err.line}:{err.column}: error: ")


def test_free_standing_units_of_nestml_8(compiler: Compiler) -> None:
    text = tiny("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / mV) / ms + I_e / C_m")
    result = compiler.compile(BuildRequest.create([nestml(text, "old_units.nestml")]))
    assert_failed(result)
    units = [d for d in errors(result) if d.code == "NO_SOLITARY_PHYSICAL_UNITS"]
    upgrade = "'nestml-registry upgrade old_units.nestml --in-place' rewrites NESTML 7/8 text for NESTML 9"
    assert [d.message for d in units] == [  # the upgrade command once per file, with its first NESTML 8-ism
        f"No free-standing physical units allowed ({u}): write '1 {u}' (a number and the unit) where '{u}' stands "
        f"alone, as NESTML 9 requires{tail}" for u, tail in (("mV", f"; {upgrade}"), ("ms", ""))]
    # NESTML's own messages are in the build log, as NESTML prints them
    log = Path(result.log_path or "").read_text()
    assert "ERROR, [" in log and "No free-standing physical units allowed (mV)" in log
    assert 'Start processing "' in log
    line = line_of(text, "V_m' =")
    source_line = text.splitlines()[line - 1]
    assert all(d.file == "old_units.nestml" and d.line == line for d in units)
    # columns are 1-based: the column points at the unit itself
    assert source_line[units[0].column - 1:].startswith("mV")
    assert source_line[units[1].column - 1:].startswith("ms")


def test_undefined_symbol(compiler: Compiler) -> None:
    text = tiny("+ I_e / C_m", "+ I_foo / C_m")
    result = compiler.compile(BuildRequest.create([nestml(text, "undef.nestml")]))
    assert_failed(result)
    assert any('"I_foo"' in d.message and d.line == line_of(text, "I_foo") for d in errors(result))


def test_cxx_compile_failure_shows_first_compiler_error(compiler: Compiler) -> None:
    # EOF is a C macro: NESTML accepts the name, the C++ compiler does not
    text = tiny("V_th mV = -55 mV      # threshold", "V_th mV = -55 mV\n        EOF real = 1", "eof_neuron")
    result = compiler.compile(BuildRequest.create([nestml(text, "eof.nestml")]))
    assert_failed(result)
    (err,) = errors(result)
    assert err.code == "CXX_BUILD_FAILED"
    assert "error" in err.message or "expected" in err.message
    assert result.log_path and result.log_path in err.message
    assert Path(result.log_path).is_file()


@pytest.mark.slow
def test_time_limit(registry_home: Path) -> None:
    quick = Compiler(CompilerConfig(cache_dir=registry_home / "cache", codegen_timeout=0.5))
    result = quick.compile(BuildRequest.create([nestml(tiny("tau_m ms = 10 ms", "tau_m ms = 11 ms"), "slow.nestml")]))
    assert_failed(result)
    assert errors(result)[0].code == "TIMEOUT"
    assert "time limit of 0.5 s" in errors(result)[0].message


def test_one_broken_file_does_not_hide_the_others_errors(compiler: Compiler) -> None:
    syntax = tiny("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / tau_m", "a_neuron")
    units = tiny("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / mV) / ms", "b_neuron")
    result = compiler.compile(BuildRequest.create([nestml(syntax, "a.nestml"), nestml(units, "b.nestml")]))
    assert_failed(result)
    files = {d.file for d in errors(result)}
    assert files == {"a.nestml", "b.nestml"}
    assert any(d.code == "NO_SOLITARY_PHYSICAL_UNITS" for d in errors(result))


def test_two_files_defining_the_same_model(compiler: Compiler) -> None:
    result = compiler.compile(BuildRequest.create([nestml(TINY, "one.nestml"), nestml(TINY, "two.nestml")]))
    assert_failed(result)
    (err,) = errors(result)
    assert err.code == "DUPLICATE_MODEL"
    assert err.file == "two.nestml" and err.line == line_of(TINY, "model tiny_neuron:")
    assert "one.nestml:" in err.message


def test_model_without_suffix_clashing_with_nest_builtin(compiler: Compiler, models_dir: Path) -> None:
    src = Source.from_path(models_dir / "synapses" / "static_synapse.nestml")
    result = compiler.compile(BuildRequest.create([src], suffix=""))
    assert_failed(result)
    (err,) = errors(result)
    assert err.code == "NAME_CLASHES_WITH_NEST"
    assert "static_synapse" in err.message and "_nestml" in err.message


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.nestml", b"", "file is empty"),
        ("blank.nestml", b"  \n\n\t\n", "file is empty"),
        ("latin1.nestml", "model caf\u00e9_neuron:\n".encode("latin-1"), "not UTF-8"),
        ("nul.nestml", b"model a_neuron:\x00\n", "NUL"),
    ],
)
def test_unreadable_files_are_refused_before_compiling(name: str, data: bytes, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        Source.from_bytes(name, data)
    assert name in str(info.value)


@pytest.mark.slow
def test_a_warm_code_generation_process_reports_like_a_fresh_one(registry_home: Path) -> None:
    """Workers keep a spare code generation process (pynestml imported) for their next build."""
    warm = Compiler(CompilerConfig(cache_dir=registry_home / "cache", warm_codegen=True))
    try:
        warm.prestart()
        for i in (1, 2):  # the first spare, then the one started while the first build ran
            text = tiny("V_m' = (E_L - V_m) / tau_m + I_e / C_m", "V_m' = ((E_L - V_m) / tau_m + I_e / C_m",
                        model=f"warm{i}_neuron")
            result = warm.compile(BuildRequest.create([nestml(text, f"warm{i}.nestml")]))
            assert_failed(result)
            assert errors(result)[0].file == f"warm{i}.nestml" and errors(result)[0].line >= 1
            log = Path(result.log_path).read_text()
            assert "nestml_registry.compiler.codegen --stdin   (started early; input on stdin)" in log
    finally:
        warm.close()
    assert warm.codegen._spare is None and not list((registry_home / "cache" / "work").glob("spare-*"))
