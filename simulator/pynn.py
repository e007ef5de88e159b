"""PyNN 0.13 with the registry: one line before ``sim.setup()``.

::

    import pyNN.nest as sim
    from nestml_registry.pynn import use_registry
    use_registry()                      # before sim.setup()
    celltype = sim.nestml.nestml_cell_type("my_neuron", "my_neuron.nestml")
    sim.setup()

PyNN compiles the NESTML types registered before ``setup()`` with NESTML and CMake at every ``setup()``,
and installs into NEST's prefix (which the PyPI wheel does not have and clusters keep read-only). With
``use_registry()`` those pending types become one registry build instead (PyNN's plain names: suffix '';
its neuron-synapse pairs with the post port ``post_spikes``; each synapse's ``weight_variable`` and
``delay_variable``), for this machine's toolchain: an identical request is the same build, so a second
``setup()`` or a second script compiles nothing. The module is resolved, checked and installed by absolute
path as ``nestml_registry.install`` does, and PyNN's stub types are resolved exactly as PyNN resolves them
after its own build. After a ``setup()`` that reset the kernel, the modules are installed again.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nestml_registry.service.client import RegistryClient
from nestml_registry.service.client.errors import RegistryClientError
from nestml_registry.service.client.notebook import BuildProgress, failure_text, source_file
from nestml_registry.simulator import pynest

logger = logging.getLogger(__name__)
_MODEL_RE = re.compile(r"^[ \t]*model[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)
POST_PORTS = ["post_spikes"]  # what PyNN names a paired synapse's postsynaptic spike port


def _file_of(description: str) -> tuple[str, bytes, str]:
    """``(file name, bytes, model name)`` of a PyNN description: a path (as PyNN decides) or NESTML text."""
    if os.path.isfile(description):  # PyNN's own test (a long text is no file: no error)
        path = Path(description)
        name, data = path.name, path.read_bytes()
    else:
        name, data = source_file(description)
    found = _MODEL_RE.search(data.decode("utf-8", errors="replace"))
    if found is None:
        raise RegistryClientError(f"{name}: declares no model; a NESTML description has a 'model NAME:' line",
                                  code="invalid_input")
    return name, data, found.group(1)


class _Request:
    """PyNN's pending NESTML types as one build request."""

    def __init__(self, pending: list[dict[str, Any]]) -> None:
        self.files: dict[str, bytes] = {}
        self.pairs: list[dict[str, Any]] = []
        self.weights: dict[str, str] = {}
        self.delays: dict[str, str] = {}
        for entry in pending:
            _, _, model = self._add(entry["description"])
            if entry["type"] != "synapse":
                continue
            entry["_syn_model"] = model
            self.weights[model] = entry["weight_variable"]
            if entry.get("delay_variable") is not None:
                self.delays[model] = entry["delay_variable"]
            if entry.get("neuron_description"):
                _, _, neuron = self._add(entry["neuron_description"])
                entry["_pair"] = (neuron, model)
                self.pairs.append({"neuron": neuron, "synapse": model, "post_ports": POST_PORTS})

    def _add(self, description: str) -> tuple[str, bytes, str]:
        name, data, model = _file_of(description)
        if self.files.get(name, data) != data:  # two descriptions of one file name: keep both, apart
            name = f"{model}_{len(self.files)}.nestml"
        self.files[name] = data
        return name, data, model


def _resolve_stubs(pending: list[dict[str, Any]]) -> None:
    """What PyNN's own ``_compile_and_resolve`` does once its module is installed."""
    for entry in pending:
        if entry["type"] == "neuron":
            entry["stub"]._resolve()
        elif "_pair" in entry:
            neuron, synapse = entry["_pair"]
            entry["stub"]._resolve(f"{synapse}__with_{neuron}", f"{neuron}__with_{synapse}")
        else:
            entry["stub"]._resolve(entry["_syn_model"])


class Hook:
    """What ``use_registry`` puts in place of PyNN's compile step."""

    def __init__(self, server: str | None, token: str | None, progress: bool | Callable[[str], None]) -> None:
        self.server, self.token, self.progress = server, token, progress
        self.references: list[str] = []  # what this process installed: again after a reset

    def compile_and_resolve(self) -> None:
        from pyNN.nest import nestml

        pending = list(nestml._pending)
        if pending:
            self.references += self._build(pending)
        if self.references:
            pynest.install(*self.references, server=self.server, token=self.token, progress=self.progress)
        if pending:
            _resolve_stubs(pending)
        nestml._compiled = True
        nestml._pending.clear()

    def _build(self, pending: list[dict[str, Any]]) -> list[str]:
        request = _Request(pending)
        with RegistryClient.from_env(self.server, self.token) as client:
            build = client.submit_build(list(request.files.items()), pairs=request.pairs, suffix="",
                                        weight_variables=request.weights, delay_variables=request.delays,
                                        toolchain=client.toolchain())
            bar = BuildProgress(", ".join(request.files), self.progress is not False)
            try:
                done = client.wait_build(build["id"], on_progress=bar.update)
            finally:
                bar.close()
        if done.get("status") != "succeeded":
            texts = {n: d.decode("utf-8", errors="replace") for n, d in request.files.items()}
            raise RegistryClientError(failure_text(done, texts), None, "build_failed",
                                      {"build": done.get("id"), "diagnostics": done.get("diagnostics") or []})
        logger.info("PyNN's NESTML types: build %s (%s)", done.get("id"), done.get("stage"))
        return [f"{m['name']}@{m['version']}" for m in done.get("models") or []]


def use_registry(server: str | None = None, token: str | None = None,
                 progress: bool | Callable[[str], None] = True) -> Hook:
    """Make PyNN's ``sim.setup()`` build its pending NESTML types in the registry (call it before ``setup()``;
    ``server``/``token`` default to ``$NESTML_REGISTRY_URL``/``$NESTML_REGISTRY_TOKEN``)."""
    from pyNN.nest import nestml

    hook = Hook(server, token, progress)
    nestml._compile_and_resolve = hook.compile_and_resolve
    return hook
