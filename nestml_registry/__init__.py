"""nestml-registry: NESTML models compiled into NEST modules, shared by a lab, loaded by BMTK PointNet.

The public entry point for simulation scripts::

    from nestml_registry import use_registry
    use_registry()          # nestml:<model> in SONATA node/edge types now resolve through the registry

Subpackages (each a top-level folder of the repository): ``compiler`` (.nestml -> NEST module, in
sandboxed child processes), ``registry`` (database, build queue, artifact store), ``service`` (HTTP API,
workers, CLI, client) and ``simulator`` (BMTK PointNet runs). Importing this package imports nothing
else: not NEST, not BMTK, not a database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestml_registry.simulator import use_registry

__all__ = ["use_registry"]


def __getattr__(name: str) -> Any:
    # on first use, not at import: the build steps' child processes import this package and may read
    # nothing of it but the compiler
    if name == "use_registry":
        from nestml_registry.simulator import use_registry

        return use_registry
    raise AttributeError(f"module 'nestml_registry' has no attribute {name!r}")
