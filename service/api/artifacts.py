"""Module files the API has read and checked, kept in memory for the next downloads.

A module's bytes never change under its sha256, so once read from the store and checked against the
digest they can be served again without touching the disk. The cache is bounded by total bytes
(``NESTML_REGISTRY_ARTIFACT_CACHE_BYTES``; 0 turns it off) and drops the least recently served first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Artifact:
    sha256: str
    filename: str
    data: bytes


class VerifiedArtifacts:
    """A thread-safe LRU of verified module files by sha256."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._items: OrderedDict[str, Artifact] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, sha256: str) -> Artifact | None:
        with self._lock:
            found = self._items.get(sha256)
            if found is not None:
                self._items.move_to_end(sha256)
            return found

    @property
    def max_item(self) -> int:
        """The largest file kept (a few large files must not flush everything else)."""
        return self.max_bytes // 4

    def put(self, artifact: Artifact) -> None:
        size = len(artifact.data)
        if size > self.max_item:
            return
        with self._lock:
            if artifact.sha256 in self._items:
                return
            self._items[artifact.sha256] = artifact
            self._size += size
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped.data)

    @property
    def size(self) -> int:
        return self._size
