"""What the child-process entry points (:mod:`nestml_registry.compiler.codegen`,
:mod:`nestml_registry.compiler.introspect`) share: how they hand their result to the parent and how they end."""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path


def write_result(path: Path, result: dict) -> None:
    """Write the result for the parent (whole or not at all)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown: freeing NESTML's and SymPy's object graphs
    takes about 0.3 s that every build would wait for. Everything is written and flushed by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def collect_garbage_rarely() -> None:
    """Run Python's cycle collector about seventy times less often: NESTML and SymPy allocate millions of
    objects, and the default thresholds spend 0.15-0.25 s of a build on collections (measured on the
    shipped neurons) in a process that lives a few seconds. Collections still run, so memory stays
    bounded (about 2 MB more)."""
    gc.set_threshold(50_000, 20, 20)
