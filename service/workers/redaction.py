"""Server paths out of what clients see: a build's log and diagnostics name the work folder, the
build cache, the Python installation; the worker stores them with those folders replaced by names.

    redact = Redactor.for_settings(settings)
    redact("build log: /var/lib/registry/cache/logs/1f2e.log")   # "build log: $CACHE/logs/1f2e.log"
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nestml_registry.service.settings import Settings


class Redactor:
    def __init__(self, folders: Iterable[tuple[str, Path]]) -> None:
        pairs: dict[str, str] = {}
        for name, folder in folders:
            for form in (str(folder), os.path.realpath(folder)):
                if len(form) > 1:
                    pairs.setdefault(form.rstrip("/"), name)
        ordered = sorted(pairs.items(), key=lambda p: -len(p[0]))  # the longest (most specific) first
        self._patterns = [(re.compile(re.escape(path) + r"(?![\w.-])"), name) for path, name in ordered]

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        return cls([("$CACHE", settings.cache_dir), ("$STORE", settings.store_dir),
                    ("$NESTML_REGISTRY_HOME", settings.home), ("$PYTHON", Path(sys.prefix)),
                    ("$PYTHON", Path(sys.base_prefix)), ("$PROJECT", Path(__file__).resolve().parent.parent),
                    ("$HOME", Path.home())])

    def __call__(self, text: str) -> str:
        for pattern, name in self._patterns:
            text = pattern.sub(name, text)
        return text

    def diagnostics(self, diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(d, message=self(d["message"])) if isinstance(d.get("message"), str) else d for d in diagnostics]
