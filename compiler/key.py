"""The build key: sha256 over everything a module's bytes depend on, and nothing else."""

from __future__ import annotations

import hashlib
import json

from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.sanitise import sanitise

KEY_VERSION = 1


def build_key(request: BuildRequest, toolchain_id: str) -> str:
    """Same sources, module name, suffix, pairs, weight variables and toolchain: same key, same module.

    ``toolchain_id`` is :attr:`nestml_registry.compiler.toolchain.Toolchain.id` (it carries the fingerprint), so a
    server that never imports NEST can compute the key for the toolchains its workers serve."""
    return _digest(request.to_dict(), toolchain_id)


def code_key(request: BuildRequest, toolchain_id: str) -> str:
    """Like :func:`build_key`, over what reaches code generation: each source's code without its comments
    (:attr:`~nestml_registry.compiler.sanitise.Sanitised.code`). Requests with one code key differ only in
    comments, so they make the same module (a succeeded build's module serves them all)."""
    sources = [{"name": s.name, "code": hashlib.sha256(sanitise(s.text, s.name).code.encode()).hexdigest()}
               for s in request.sources]
    return _digest({**request.to_dict(), "sources": sources}, toolchain_id)


def _digest(request: dict, toolchain_id: str) -> str:
    doc = {"v": KEY_VERSION, **request, "toolchain": toolchain_id}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
