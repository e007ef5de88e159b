"""The model library NESTML ships (``models/neurons/*.nestml`` and ``models/synapses/*.nestml`` beside the
installed ``pynestml``), as the builds that publish it: ``nestml-registry library import``.

Each neuron is one build. A synapse that reads its postsynaptic neuron (a spike port besides its first, as
every STDP rule has) is built paired with :data:`PARTNER`, the neuron NESTML's own STDP tests pair it with;
a synapse with one spike input is built alone. The plan is read from the installed NESTML, so a new NESTML
brings its new models with it.

    builds = plan(shipped_folder())
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.request import Pair

PARTNER = "iaf_psc_exp_neuron"
# shipped models the registry cannot build yet, and why (a failed build of one is reported, not an error)
KNOWN_LIMITS = {
    "neuromodulated_stdp_synapse": "its mod_spikes port is a volume transmitter's (NESTML's vt_ports), which the "
                                   "registry's neuron-synapse pairs do not pass yet",
    "stdsp_synapse": "it reads a dAP_trace from its postsynaptic neuron, which no neuron NESTML ships has",
}
KINDS = ("neurons", "synapses")
_PORT_RE = re.compile(r"^\s*(\w+)(?:\s+\w+)?\s*<-\s*(?:\w+\s+)*(spike|continuous)\b", re.MULTILINE)


@dataclass(frozen=True)
class LibraryBuild:
    """One build of the library: the model it publishes (``model``, its NESTML name), its ``kind``, the
    files, and the pair it is generated in (synapses that read their neuron)."""

    model: str
    kind: str
    files: tuple[Path, ...]
    pair: Pair | None = None

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "kind": self.kind, "files": [f.name for f in self.files],
                "pair": None if self.pair is None else self.pair.to_dict()}


def shipped_folder() -> Path:
    """Where the installed NESTML keeps its models (``<prefix>/models``); InputError when it has none."""
    for base in (sysconfig.get_path("data"), sys.prefix):
        folder = Path(base) / "models"
        if all((folder / kind).is_dir() for kind in KINDS):
            return folder
    raise InputError("NESTML's shipped models are not installed here (no models/neurons beside this Python's "
                     "pynestml): install NESTML (pip install nestml), or give the folder with --from DIR")


def plan(folder: Path, only: list[str] | None = None) -> list[LibraryBuild]:
    """The builds that publish the models in ``folder`` (``neurons/`` and ``synapses/``), neurons first;
    with ``only``, just those (by NESTML name). InputError for a folder without models or an unknown name."""
    files = {kind: sorted((folder / kind).glob("*.nestml")) for kind in KINDS}
    if not files["neurons"] and not files["synapses"]:
        raise InputError(f"{folder} holds no NESTML models (looked for neurons/*.nestml and synapses/*.nestml)")
    partner = folder / "neurons" / f"{PARTNER}.nestml"
    builds = [LibraryBuild(f.stem, "neuron", (f,)) for f in files["neurons"]]
    for f in files["synapses"]:
        try:
            ports = input_ports(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{f} cannot be read as NESTML text ({exc}): give a folder of .nestml files "
                             "(--from DIR)") from exc
        reads_neuron = len([p for p, kind in ports if kind == "spike"]) > 1 or any(k == "continuous" for _, k in ports)
        builds.append(LibraryBuild(f.stem, "synapse", (partner, f), Pair(PARTNER, f.stem)) if reads_neuron
                      and partner.is_file() else LibraryBuild(f.stem, "synapse", (f,)))
    if only:
        known = {b.model for b in builds}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise InputError(f"no shipped model {', '.join(unknown)} in {folder}: its models are "
                             f"{', '.join(sorted(known))}")
        builds = [b for b in builds if b.model in only]
    return builds


def input_ports(text: str) -> list[tuple[str, str]]:
    """The (name, spike|continuous) input ports of the first model in ``text``, read from its input block."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.split("#", 1)[0].strip() == "input:"), None)
    if start is None:
        return []
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start + 1:]:
        code = line.split("#", 1)[0]
        if code.strip() and len(code) - len(code.lstrip()) <= indent:
            break
        block.append(code)
    return [(m.group(1), m.group(2)) for m in _PORT_RE.finditer("\n".join(block))]

