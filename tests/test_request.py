"""Requests are validated before any work: names, pairs, module names, file names."""

from __future__ import annotations

import re

import pytest
from conftest import DATA, nestml

from nestml_registry.compiler.diagnostics import first_cxx_error
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.request import BuildRequest, Pair, parse_weight_variable
from nestml_registry.compiler.sources import Source, display_name

TINY = (DATA / "tiny_neuron.nestml").read_text()
SYN = 'model my_synapse:\n    parameters:\n        w real = 1\n    input:\n        pre_spikes <- spike\n'


def test_models_are_found_outside_docstrings() -> None:
    text = '"""\nmodel not_this_neuron:\n"""\n' + TINY
    assert [(m.name, m.kind) for m in nestml(text).models()] == [("tiny_neuron", "neuron")]
    assert nestml(text).models()[0].line == 4 + TINY.splitlines().index("model tiny_neuron:")


def test_normalisation() -> None:
    a = Source.from_bytes("a.nestml", b"\xef\xbb\xbfmodel a_neuron:\r\n    state:\r\n")
    assert a.text == "model a_neuron:\n    state:\n"
    assert a.sha256 == Source.from_text("a.nestml", "model a_neuron:\n    state:").sha256


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path/x.nestml", "dir\\win.nestml"])
def test_file_names_are_never_paths(name: str) -> None:
    shown = display_name(name)
    assert "/" not in shown and "\\" not in shown and shown not in ("", ".", "..")


@pytest.mark.parametrize("bad", ["", "..", "/"])
def test_empty_file_names_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="file name"):
        display_name(bad)


@pytest.mark.parametrize("module", ["mymodule", "_x_module", "lab2_neurons_module"])
def test_valid_module_names(module: str) -> None:
    assert BuildRequest.create([nestml(TINY)], module=module).module == module


@pytest.mark.parametrize("module", ["my-module", "2module", "mymod", "a b module", "../module"])
def test_invalid_module_names(module: str) -> None:
    with pytest.raises(InputError, match="end in 'module'"):
        BuildRequest.create([nestml(TINY)], module=module)


def test_default_module_names() -> None:
    assert BuildRequest.create([nestml(TINY)]).module == "tiny_neuron_nestml_module"
    two = BuildRequest.create([nestml(TINY), nestml(SYN, "syn.nestml")])
    names = [m.name for s in two.sources for m in s.models()]
    assert two.module == f"{names[0]}_{names[1]}_nestml_module"  # what it holds, in the sources' order
    many = BuildRequest.create([nestml(TINY.replace("tiny_neuron", f"neuron_number_{i}_with_a_long_name"),
                                       f"n{i}.nestml") for i in range(6)])
    assert re.fullmatch(r"neuron_number_0_with_a_long_name_and_5_more_[0-9a-f]{8}_module", many.module)


def test_pairs() -> None:
    assert Pair.parse("a_neuron:b_synapse") == Pair("a_neuron", "b_synapse")
    assert Pair.parse("a_neuron:b_synapse:post,post2").post_ports == ("post", "post2")
    req = BuildRequest.create([nestml(TINY), nestml(SYN, "syn.nestml")],
                              pairs=[Pair.parse("tiny_neuron_nestml:my_synapse")])
    assert req.pairs == (Pair("tiny_neuron", "my_synapse"),)
    with pytest.raises(InputError, match=r"no synapse model 'stdp_synapse'.*they define: my_synapse, tiny_neuron"):
        BuildRequest.create([nestml(TINY), nestml(SYN, "syn.nestml")], pairs=[Pair.parse("tiny_neuron:stdp_synapse")])
    with pytest.raises(InputError, match="first name must be the neuron"):
        BuildRequest.create([nestml(TINY), nestml(SYN, "syn.nestml")], pairs=[Pair.parse("my_synapse:my_synapse")])
    for bad in ["a", "a:b:c:d", "a:", "a b:c", "a:b:"]:
        with pytest.raises(InputError, match="pair"):
            Pair.parse(bad)


def test_weight_variables() -> None:
    req = BuildRequest.create([nestml(SYN, "syn.nestml")], weight_variables={"my_synapse_nestml": "w"})
    assert req.weight_variables == (("my_synapse", "w"),)
    assert parse_weight_variable("stdp_synapse=w") == ("stdp_synapse", "w")
    with pytest.raises(InputError, match=r"no such synapse model.*synapses: my_synapse"):
        BuildRequest.create([nestml(SYN, "syn.nestml")], weight_variables={"other_synapse": "w"})
    with pytest.raises(InputError, match="SYNAPSE:VARIABLE"):
        parse_weight_variable("w")


def test_duplicate_file_names_and_limits() -> None:
    with pytest.raises(InputError, match="same name"):
        BuildRequest.create([nestml(TINY, "x.nestml"), nestml(SYN, "x.nestml")])
    with pytest.raises(InputError, match="at least one"):
        BuildRequest.create([])
    with pytest.raises(InputError, match="suffix"):
        BuildRequest.create([nestml(TINY)], suffix="-x")


def test_first_cxx_error() -> None:
    log = "[ 50%] Building CXX object\n/w/target/x.h:368:12: error: expected unqualified-id before '-' token\n"
    assert first_cxx_error(log) == ("/w/target/x.h", 368, 12, "expected unqualified-id before '-' token")
    assert first_cxx_error("CMake Error at CMakeLists.txt:3 (project):\n")[3].startswith("CMake Error")
    assert first_cxx_error("all good\n") is None
