"""The build key: sha256 over everything a module's bytes depend on, and nothing else."""

from __future__ import annotations

import hashlib
import json

from compiler.request import BuildRequest
from compiler.toolchain import Toolchain

KEY_VERSION = 1


def build_key(request: BuildRequest, toolchain: Toolchain) -> str:
    """Same sources, module name, suffix, pairs, options and toolchain: same key, same module."""
    doc = {
        "v": KEY_VERSION,
        **request.to_dict(),
        "toolchain": toolchain.fingerprint,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
