"""The one integrity module: validators that take no trailing newline, ELF machine and C++ ABI detection."""

from __future__ import annotations

import pytest

from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.integrity import elf_machine, is_file_name, is_sha256, nest_string_abi
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sources import Source
from nestml_registry.registry import resolving, toolchains
from nestml_registry.registry.errors import InvalidInput, InvalidReference
from nestml_registry.registry.store import check_filename

SHA = "ab" * 32


def test_validators_refuse_a_trailing_newline() -> None:
    assert is_sha256(SHA) and not is_sha256(SHA + "\n") and not is_sha256(SHA.upper())
    assert is_file_name("m_module.so") and not is_file_name("m_module.so\n")
    for bad in (".hidden", "..", "a/b", "", "x" * 256):
        assert not is_file_name(bad), bad
    with pytest.raises(InvalidInput):
        check_filename("m_module.so\n")
    with pytest.raises(InvalidReference):
        resolving.parse_reference("custom_izh_neuron\n@2")
    with pytest.raises(InvalidInput):
        toolchains.check_id("nest3.10.0-linux\n")


def test_names_in_a_build_request_take_no_trailing_newline() -> None:
    src = Source.from_text("a.nestml", "model a_neuron:\n    state:\n        V_m mV = 0 mV\n")
    with pytest.raises(InputError, match="module"):
        BuildRequest.create([src], module="a_module\n")


def test_elf_machine_and_string_abi() -> None:
    x86 = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (62).to_bytes(2, "little")
    assert elf_machine(x86) == "x86_64" and elf_machine(b"#!/bin/sh\n" + b"\0" * 20) is None
    assert nest_string_abi(b"..._ZN4nest6Kernel3getENSt7__cxx1112basic_string...") == 1
    assert nest_string_abi(b"..._ZN4nest6Kernel3getESs...") == 0
    assert nest_string_abi(b"no symbols of NEST") is None
