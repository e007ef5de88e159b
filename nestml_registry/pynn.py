"""PyNN 0.13 with the registry: ``from nestml_registry.pynn import use_registry; use_registry()`` before
``sim.setup()`` (see :mod:`nestml_registry.simulator.pynn`)."""

from __future__ import annotations

from nestml_registry.simulator.pynn import Hook, use_registry

__all__ = ["Hook", "use_registry"]
