"""Child-process entry: load a built module in NEST and report what it registered.

    python -m compiler.introspect MODULE.so RESULT.json
    python -m compiler.introspect --stdin RESULT.json     (started early: imports NEST, then reads
                                                           the module's path from stdin; none: exits)

Loading proves the module works with this NEST (ABI, symbols, names) and gives the names exactly
as NEST registers them, with NEST's defaults and receptor types.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path

from nestml_registry.compiler.child import exit_now, write_result


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan": JSON has no such numbers
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _nest():
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    nest.set_verbosity("M_ERROR")
    return nest


def introspect(module_path: Path) -> dict:
    nest = _nest()
    before_nodes, before_syns = set(nest.node_models), set(nest.synapse_models)
    try:
        nest.Install(str(module_path.with_suffix("")))
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    nodes = sorted(set(nest.node_models) - before_nodes)
    syns = sorted(set(nest.synapse_models) - before_syns)
    defaults, receptors = {}, {}
    for name in nodes + syns:
        d = nest.GetDefaults(name)
        receptors[name] = _jsonable(d.get("receptor_types", {}))
        defaults[name] = {k: _jsonable(v) for k, v in d.items()
                          if isinstance(v, (bool, int, float, str)) or hasattr(v, "tolist")}
    return {"ok": True, "node_models": nodes, "synapse_models": syns, "defaults": defaults, "receptor_types": receptors}


def main(argv: list[str]) -> int:
    if argv[0] == "--stdin":
        with contextlib.suppress(OSError):
            os.nice(10)  # started while make compiles: take only a core the compiler leaves idle
        _nest()  # the slow part, done while the module still compiles
        line = sys.stdin.readline().strip()
        if not line:
            return 0
        argv = [line, argv[1]]
    result = introspect(Path(argv[0]).resolve())
    write_result(Path(argv[1]), result)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))  # NEST's teardown would add to every build
