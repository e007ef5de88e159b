"""nestml-registry: NESTML models compiled into NEST modules, shared by a lab, loaded by BMTK PointNet.

The public entry points for simulation scripts::

    from nestml_registry import use_registry
    use_registry()          # nestml:<model> in SONATA node/edge types now resolve through the registry

    import nest, nestml_registry
    name = nestml_registry.install("custom_izh_neuron@2")   # a PyNEST script or notebook
    cells = nest.Create(name, 100)
    nestml_registry.publish(NESTML_TEXT)                    # -> ["my_neuron_nestml@1"]

Subpackages (each a top-level folder of the repository): ``compiler`` (.nestml -> NEST module, in
sandboxed child processes), ``registry`` (database, build queue, artifact store), ``service`` (HTTP API,
workers, CLI, client) and ``simulator`` (BMTK PointNet runs). Importing this package imports nothing
else: not NEST, not BMTK, not a database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestml_registry.about import release
    from nestml_registry.service.client.notebook import publish
    from nestml_registry.simulator import use_registry
    from nestml_registry.simulator.pynest import install

__all__ = ["install", "publish", "release", "use_registry"]


def __getattr__(name: str) -> Any:
    # on first use, not at import: the build steps' child processes import this package and may read
    # nothing of it but the compiler
    if name == "release":
        from nestml_registry.about import release

        return release
    if name == "use_registry":
        from nestml_registry.simulator import use_registry

        return use_registry
    if name == "install":
        from nestml_registry.simulator.pynest import install

        return install
    if name == "publish":
        from nestml_registry.service.client.notebook import publish

        return publish
    raise AttributeError(f"module 'nestml_registry' has no attribute {name!r}")
