"""What a new version drops of the one before: the names simulations set, record or connect to, and how
a person reads them. Nothing here touches the database (the CLI's output uses it too)."""

from __future__ import annotations

from typing import Any

# what a version can drop that simulations name: (model document key, how a person calls it)
BREAK_KINDS = (("parameters", "parameters"), ("state", "state variables"), ("input_ports", "input ports"))


def dropped_names(older: Any, newer: Any) -> dict[str, list[str]]:
    """The parameters, state variables and input ports ``older`` has and ``newer`` does not, by kind (two
    model versions, rows or anything with those attributes)."""
    def names(items: list[Any]) -> set[str]:
        return {str(i["name"]) for i in items or [] if isinstance(i, dict) and i.get("name")}
    return {key: sorted(names(getattr(older, key)) - names(getattr(newer, key))) for key, _ in BREAK_KINDS}


def describe_breaks(breaks: dict[str, Any]) -> str:
    """``parameters a, b; input ports d``: what a version drops, for people."""
    return "; ".join(f"{label} {', '.join(map(str, breaks[key]))}" for key, label in BREAK_KINDS if breaks.get(key))
