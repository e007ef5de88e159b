"""This machine's cache of downloaded NEST modules, by content: ``<root>/<sha[:2]>/<sha256>/<module>.so``.

    cache = ModuleCache()                                   # $NESTML_REGISTRY_MODULE_CACHE
    path = cache.fetch(client, sha256, "izh_neuron_nestml_module")
    nest.Install(str(path.with_suffix("")))

The path carries the module's hash, so a file at a path never changes (NEST would keep the code it
loaded first from a path). Many jobs on one machine may share the cache: a file lock per sha256 makes
one of them download while the others wait, and a file appears only complete and verified (written to
a temporary file in the same directory, hashed, renamed). Every ``get`` re-hashes the file; a damaged
one is removed and counts as missing. Once filled, the cache works without the registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from nestml_registry.compiler.integrity import sha256_file
from nestml_registry.service.client import RegistryClientError
from nestml_registry.service.client.messages import check_filename, check_sha256

logger = logging.getLogger(__name__)

CACHE_ENV = "NESTML_REGISTRY_MODULE_CACHE"
LOCK_NAME = ".lock"


class Downloader(Protocol):
    def download(self, sha256: str, dest_dir: str | os.PathLike, filename: str | None = None) -> Path: ...


def default_root(env: Mapping[str, str] | None = None) -> Path:
    """``$NESTML_REGISTRY_MODULE_CACHE``, else ``$XDG_CACHE_HOME/nestml-registry/modules``
    (``~/.cache/nestml-registry/modules``)."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "nestml-registry" / "modules"


class ModuleCache:
    """Verified module files named by their sha256; safe for concurrent processes."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()

    def __repr__(self) -> str:
        return f"ModuleCache({str(self.root)!r})"

    def directory(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def path(self, sha256: str, module_name: str) -> Path:
        """Where module ``sha256`` lives (whether or not it is there): ``<root>/<sha[:2]>/<sha>/<name>.so``."""
        name = module_name if module_name.endswith(".so") else f"{module_name}.so"
        return self.directory(sha256) / check_filename(name)

    @contextlib.contextmanager
    def _locked(self, sha256: str) -> Iterator[None]:
        directory = self.directory(sha256)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _verified(self, path: Path, sha256: str) -> bool | None:
        """True: the file is there and matches; False: it is there and damaged; None: it is not there."""
        try:
            return sha256_file(path) == sha256
        except FileNotFoundError:
            return None

    def get(self, sha256: str, module_name: str) -> Path | None:
        """The cached module, its bytes just checked against ``sha256``; None if missing (or damaged:
        a damaged file is removed)."""
        path = self.path(sha256, module_name)
        ok = self._verified(path, sha256)
        if ok:
            return path
        if ok is None:
            return None
        with self._locked(sha256):  # recheck under the lock: a fetch may just have replaced it
            ok = self._verified(path, sha256)
            if ok is False:
                logger.warning("removing damaged cached module %s (its bytes do not hash to %s)", path, sha256)
                path.unlink(missing_ok=True)
        return path if ok else None

    def fetch(self, client: Downloader, sha256: str, module_name: str) -> Path:
        """The cached module, downloaded with ``client`` first if missing (one download per machine,
        whoever asks at the same time)."""
        found = self.get(sha256, module_name)
        if found is not None:
            return found
        path = self.path(sha256, module_name)
        with self._locked(sha256):
            ok = self._verified(path, sha256)
            if ok:
                return path
            if ok is False:
                path.unlink(missing_ok=True)
            logger.info("downloading module %s (%s)", module_name, sha256[:12])
            downloaded = client.download(sha256, path.parent, path.name)
            if downloaded != path:  # a client that chose its own name: keep the cache's layout
                os.replace(downloaded, path)
            if not self._verified(path, sha256):  # the client verifies too; a cache never trusts it blindly
                path.unlink(missing_ok=True)
                raise RegistryClientError(f"module {sha256} does not match its sha256 after downloading it to {path}; "
                                          "nothing was kept: try again", code="checksum_mismatch")
            return path
