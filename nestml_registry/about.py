"""What this installation is: its release (the package's version)."""

from __future__ import annotations


def release() -> str:
    """This installation's version of nestml-registry (its package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nestml-registry")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0"
