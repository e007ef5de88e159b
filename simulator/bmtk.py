"""The BMTK PointNet hook: ``use_registry()`` switches on ``nestml:`` resolution for this process.

    from nestml_registry.simulator import use_registry
    use_registry()                      # NESTML_REGISTRY_URL, NESTML_REGISTRY_TOKEN
    configure = pointnet.Config.from_json("config.json")
    ...                                 # the usual BMTK lines, unchanged

What it changes in BMTK, and nothing else:

- ``Config.build_env`` and ``PointNetwork.from_config`` first resolve and check every ``nestml:`` node and
  edge type of the config (:mod:`nestml_registry.simulator.session`), before BMTK empties the output
  folder, reads a file into the network or touches NEST: a refused run leaves the folder as it was;
  ``from_config`` then writes the run's lock file;
- ``PointSimulator._load_nest_modules`` (called after ``nest.ResetKernel``) installs the resolved
  modules by absolute path after the config's own ``nest_modules``;
- a ``nestml:`` node type creates the NEST model its reference resolved to; a user ``@cell_model``
  function is looked up first, under every spelling of that model, most specific first
  (:mod:`nestml_registry.simulator.hooks`), and gets the resolved name;
- a ``nestml:`` edge type connects with the resolved synapse model (BMTK would cut the first five
  characters of any template that starts with ``nest``);
- a failing ``nest.Connect`` raises NEST's own error (BMTK 1.2.0 on NEST 3.10 replaces it with an
  ``AttributeError`` about ``nest.kernel``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np

from nestml_registry.simulator import hooks
from nestml_registry.simulator.parallel import check_launcher
from nestml_registry.simulator.references import reference_of
from nestml_registry.simulator.session import RegistrySession, active, load_config, set_active

logger = logging.getLogger(__name__)
_PATCHED = "_nestml_registry_patched"


def use_registry(server: str | None = None, token: str | None = None, **options: Any) -> RegistrySession:
    """Resolve ``nestml:`` models from the registry in every BMTK PointNet network this process builds.

    ``server``/``token`` default to ``$NESTML_REGISTRY_URL``/``$NESTML_REGISTRY_TOKEN``. Options:
    ``locked`` (a lock file to resolve exactly again), ``build`` (False: fail instead of asking the
    registry to build a model for this toolchain), ``cache`` (the module cache folder),
    ``build_timeout`` (seconds), ``progress`` (a callable taking one line of text; by default the lines,
    such as what each reference resolved to, go to stderr; False: only to the log)."""
    options.setdefault("progress", _say)
    if options["progress"] is False:
        options["progress"] = None
    session = RegistrySession.create(server, token, **options)
    if "nest" not in sys.modules:  # (after `import nest`, NEST itself has already decided)
        check_launcher(session.local_toolchain())
    patch_bmtk()
    set_active(session)
    return session


def _say(line: str) -> None:
    sys.stderr.write(f"nestml-registry: {line}\n")
    sys.stderr.flush()


def _map(template: object) -> str | None:
    session = active()
    reference = reference_of(template)
    if session is None or reference is None or session.plan is None:
        return None
    return session.plan.nest_name(reference)


def patch_bmtk() -> None:
    """Install the hooks into BMTK's PointNet classes (once per process)."""
    import nest
    from bmtk.simulator.pointnet import config as pointnet_config
    from bmtk.simulator.pointnet import pointnetwork, pointsimulator, sonata_adaptors
    from bmtk.simulator.pointnet.pyfunction_cache import py_modules

    if getattr(pointnetwork.PointNetwork, _PATCHED, False):
        return
    network_cls = pointnetwork.PointNetwork
    config_cls = pointnet_config.Config
    simulator_cls = pointsimulator.PointSimulator
    batched_cls = sonata_adaptors.PointNodeBatched
    node_cls = sonata_adaptors.PointNode
    edges_cls = sonata_adaptors.PointEdgeAdaptor

    original_from_config = network_cls.from_config.__func__

    def from_config(cls: type, conf: Any, **properties: Any) -> Any:
        session = active()
        if session is not None:
            session.prepare(conf)
            session.save_lock(load_config(conf))  # the run goes ahead: its lock file, after build_env
        return original_from_config(cls, conf, **properties)

    original_build_env = config_cls.build_env

    def build_env(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = active()
        if session is not None:
            session.prepare(self)  # a refusal comes before BMTK empties the output folder
        return original_build_env(self, *args, **kwargs)

    original_load = simulator_cls._load_nest_modules

    def load_nest_modules(self: Any) -> None:
        original_load(self)
        session = active()
        if session is not None:
            session.install(nest)

    original_batched = batched_cls.nest_model.fget

    def batched_nest_model(self: Any) -> str:
        return _map(self._nt_table[self._nt_id]["model_template"]) or original_batched(self)

    def batched_build(self: Any) -> None:
        session = active()
        hook = hooks.find_hook(py_modules, self.model_template, self.model_type, session.plan if session else None)
        if hook is None:
            return original_build(self)
        self._nest_objs = hook(self, self.nest_model, self.nest_params)
        self._nest_ids = self._nest_objs.tolist()
        return None

    original_build = batched_cls.build
    original_node = node_cls.nest_model.fget

    def node_nest_model(self: Any) -> str:
        try:
            template = self._node["model_template"]
        except (KeyError, TypeError):
            template = None
        return _map(template) or original_node(self)

    original_edges = edges_cls.preprocess_edge_types

    def preprocess_edge_types(network: Any, edge_population: Any) -> None:
        table = edge_population.types_table
        mapped = {}
        if "model_template" in table.columns:
            for et_id in np.unique(edge_population.type_ids):
                name = _map(table[et_id]["model_template"])
                if name is not None:
                    mapped[et_id] = name
        original_edges(network, edge_population)
        for et_id, name in mapped.items():
            table[et_id]["model_template"] = name

    def nest_connect(self: Any, nest_srcs: Any, nest_trgs: Any, conn_spec: Any = "one_to_one",
                     syn_spec: Any = None) -> None:
        try:
            nest.Connect(nest_srcs.copy(), nest_trgs.copy(), conn_spec=conn_spec, syn_spec=syn_spec)
        except Exception as exc:
            name = type(exc).__name__
            self.io.log_error(f"nest.Connect failed: {name}: {exc}")
            if "BadDelay" in name:
                resolution = nest.GetKernelStatus().get("resolution", "NaN")
                self.io.log_error(f'synaptic "delay" value in edges is not compatible with simulator resolution/"dt" '
                                  f"({resolution})")
            raise

    network_cls.from_config = classmethod(from_config)
    config_cls.build_env = build_env
    simulator_cls._load_nest_modules = load_nest_modules
    batched_cls.nest_model = property(batched_nest_model)
    batched_cls.build = batched_build
    node_cls.nest_model = property(node_nest_model)
    edges_cls.preprocess_edge_types = staticmethod(preprocess_edge_types)
    network_cls._nest_connect = nest_connect
    setattr(network_cls, _PATCHED, True)
    logger.debug("BMTK PointNet resolves nestml: models from the registry")
