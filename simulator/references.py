"""Find the ``nestml:`` model references in a BMTK SONATA network.

A node or edge type whose ``model_template`` is ``nestml:<name>``, ``nestml:<name>_nestml`` or
``nestml:<name>@<version>`` names a model in the registry. :func:`find_uses` reads the node and edge
type tables (and per-node ``model_template`` columns in the nodes files) of a config's networks and
returns one :class:`Use` per type that refers to a model, so that everything can be resolved and
checked before BMTK builds anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestml_registry.simulator.errors import SimulatorError

SCHEMA = "nestml"
PREFIX = SCHEMA + ":"
_REFERENCE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(@[1-9][0-9]*)?$")
SYNTAX = "nestml:NAME, nestml:NAME_nestml or nestml:NAME@VERSION (e.g. nestml:custom_izh_neuron@2)"


@dataclass(frozen=True)
class Use:
    """One node or edge type of the network that refers to a registry model."""

    template: str  # the model_template as written, e.g. "nestml:custom_izh_neuron@2"
    reference: str  # what the registry resolves, e.g. "custom_izh_neuron@2"
    kind: str  # "node" or "edge"
    types_file: str
    type_id: int | None
    model_type: str | None = None  # nodes: point_neuron, point_process, ...
    dynamics_params: str | None = None  # the JSON file name given in the types table

    @property
    def where(self) -> str:
        what = f"{self.kind} type {self.type_id}" if self.type_id is not None else f"{self.kind}s"
        return f"{what} in {self.types_file}"


def reference_of(template: object) -> str | None:
    """``custom_izh_neuron@2`` for ``nestml:custom_izh_neuron@2``; None for any other template.
    Raises SimulatorError for a ``nestml:`` template that is not a valid reference."""
    if not isinstance(template, str) or not template.strip().startswith(PREFIX):
        return None
    reference = template.strip()[len(PREFIX):].strip()
    if not _REFERENCE_RE.fullmatch(reference):
        raise SimulatorError(f"invalid model template {template!r}: write {SYNTAX}", "invalid_reference",
                             {"template": template})
    return reference


def base_name(reference: str) -> str:
    """The model name of a reference, without ``@VERSION``."""
    return reference.split("@", 1)[0]


def read_types_table(path: str | Path) -> list[dict[str, str]]:
    """The rows of a SONATA node or edge types table (space separated, as BMTK writes and reads them)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=" ", skipinitialspace=True))
    except FileNotFoundError as exc:
        raise SimulatorError(f"{path}: no such types file; check the networks section of the config",
                             "missing_file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SimulatorError(f"{path}: cannot read this types table ({exc})", "invalid_network") from exc
    return [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in rows]


def _type_id(row: Mapping[str, Any], column: str) -> int | None:
    try:
        return int(row[column])
    except (KeyError, TypeError, ValueError):
        return None


def _none(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "NULL", "None", "nan") else text


def _uses_in_table(path: str, kind: str) -> list[Use]:
    id_column = "node_type_id" if kind == "node" else "edge_type_id"
    uses = []
    for row in read_types_table(path):
        reference = reference_of(row.get("model_template"))
        if reference is None:
            continue
        uses.append(Use(template=row["model_template"], reference=reference, kind=kind, types_file=path,
                        type_id=_type_id(row, id_column), model_type=_none(row.get("model_type")),
                        dynamics_params=_none(row.get("dynamics_params"))))
    return uses


def _uses_in_nodes_file(nodes_file: str, types_file: str) -> list[Use]:
    """Per-node ``model_template`` columns (rare: BMTK lets a nodes file override the types table)."""
    import h5py

    found: dict[str, Use] = {}
    try:
        with h5py.File(nodes_file, "r") as h5:
            for pop in h5.get("nodes", {}).values():
                for group in pop.values():
                    if not isinstance(group, h5py.Group) or "model_template" not in group:
                        continue
                    for raw in set(group["model_template"][()].tolist()):
                        text = raw.decode() if isinstance(raw, bytes) else str(raw)
                        reference = reference_of(text)
                        if reference is not None:
                            found[text] = Use(text, reference, "node", nodes_file, None)
    except FileNotFoundError as exc:
        raise SimulatorError(f"{nodes_file}: no such nodes file; check the networks section of the config",
                             "missing_file") from exc
    except OSError as exc:
        raise SimulatorError(f"{nodes_file}: cannot read this nodes file ({exc})", "invalid_network") from exc
    return list(found.values())


def network_files(config: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The (resolved) ``networks.nodes`` and ``networks.edges`` entries of a BMTK config."""
    networks = config.get("networks") or {}
    if not isinstance(networks, Mapping):
        raise SimulatorError("the config's 'networks' is not an object: give {\"nodes\": [...], \"edges\": [...]}",
                             "invalid_config")
    return list(networks.get("nodes") or []), list(networks.get("edges") or [])


def find_uses(config: Mapping[str, Any]) -> list[Use]:
    """Every node and edge type in the config's networks that names a registry model."""
    nodes, edges = network_files(config)
    uses: list[Use] = []
    for entry in nodes:
        if entry.get("node_types_file"):
            uses += _uses_in_table(entry["node_types_file"], "node")
        if entry.get("nodes_file"):
            uses += _uses_in_nodes_file(entry["nodes_file"], entry.get("node_types_file", ""))
    for entry in edges:
        if entry.get("edge_types_file"):
            uses += _uses_in_table(entry["edge_types_file"], "edge")
    return uses


def distinct_references(uses: Iterable[Use]) -> list[str]:
    """The references in first-seen order, each once."""
    return list(dict.fromkeys(u.reference for u in uses))
