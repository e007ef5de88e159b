"""What the child-process entry points (:mod:`compiler.codegen`, :mod:`compiler.introspect`) share:
how they hand their result to the parent and how they end."""

from __future__ import annotations

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
