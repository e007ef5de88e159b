"""BMTK PointNet runs that resolve ``nestml:`` models from the registry (see :mod:`nestml_registry.simulator.bmtk`).

Importing this package imports neither NEST nor BMTK; :func:`use_registry` does.
"""

from __future__ import annotations

from typing import Any


def use_registry(server: str | None = None, token: str | None = None, **options: Any) -> Any:
    """Switch on ``nestml:`` resolution in BMTK PointNet for the rest of the process
    (see :func:`nestml_registry.simulator.bmtk.use_registry`)."""
    from nestml_registry.simulator.bmtk import use_registry as _use_registry

    return _use_registry(server, token, **options)


__all__ = ["use_registry"]
