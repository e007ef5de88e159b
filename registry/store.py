"""Content-addressed artifact files: ``<root>/<sha[:2]>/<sha>/<filename>``.

The file keeps its own name (NEST loads ``<module>.so`` by the module's name) and sits in a directory
named after its sha256, so a path never changes content: a NEST process that has loaded a path keeps
the right code. Files are written to a temporary file inside the store, fsynced and renamed, so a
reader never sees half of one. The store keeps no state in memory: several processes on several
machines may share the directory (a lab's network file system).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from nestml_registry.compiler.integrity import MAX_FILE_NAME, is_file_name, is_sha256
from nestml_registry.registry.errors import CorruptArtifact, InvalidInput, NotFound, TooLarge

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
INCOMING = ".incoming"


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    location: str  # "<sha[:2]>/<sha>/<filename>", relative to the store's root

    @property
    def filename(self) -> str:
        return self.location.rsplit("/", 1)[1]


def check_filename(filename: str) -> str:
    """``filename`` if it is a plain file name; request input is never used as a path."""
    if not is_file_name(filename):
        raise InvalidInput(
            f"invalid artifact file name {filename!r}: use letters, digits, '_', '-' and '.' only "
            f"(no '/', not starting with '.', at most {MAX_FILE_NAME} characters), e.g. my_module.so"
        )
    return filename


def check_sha256(sha256: str) -> str:
    if not is_sha256(sha256):
        raise InvalidInput(f"invalid sha256 {sha256!r}: give 64 lower-case hexadecimal digits")
    return sha256


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some file systems cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check(path: Path, sha: str, actual: str, size: int) -> None:
    if actual != sha:  # the path goes to the server's log only: clients see no server paths
        logger.error("artifact %s is corrupt: its %d bytes hash to %s, not to %s", path, size, actual, sha)
        raise CorruptArtifact(
            f"the stored module {sha} is corrupt: its {size} bytes hash to {actual}; it will not be served. "
            "Tell the registry's administrator, who repairs it with `nestml-registry store verify --repair` "
            "(or push its sources again with --retry)",
            {"expected": sha, "actual": actual},
        )


class ArtifactStore:
    """Files named by their content. Nothing is cached in memory; every read re-checks the bytes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # -- names -------------------------------------------------------------------------------------

    @staticmethod
    def location_of(sha256: str, filename: str) -> str:
        check_sha256(sha256)
        return f"{sha256[:2]}/{sha256}/{check_filename(filename)}"

    def path_of(self, sha256: str, filename: str) -> Path:
        """Where the artifact ``sha256`` named ``filename`` lives (whether or not it exists)."""
        return self.root / self.location_of(sha256, filename)

    def parse_location(self, location: str) -> tuple[str, str]:
        """``(sha256, filename)`` of a location ``<sha[:2]>/<sha>/<filename>``; refuses anything else."""
        parts = location.split("/") if isinstance(location, str) else []
        if len(parts) != 3 or not is_sha256(parts[1]) or parts[0] != parts[1][:2]:
            raise InvalidInput(f"invalid artifact location {location!r}: expected <sha[:2]>/<sha256>/<file name>")
        return parts[1], check_filename(parts[2])

    # -- writing -----------------------------------------------------------------------------------

    def put_file(self, src: Path, filename: str) -> StoredArtifact:
        """Store a copy of ``src`` under ``filename``."""
        src = Path(src)
        if not src.is_file():
            raise NotFound(f"cannot store {src}: no such file; give the path of an existing file")
        with open(src, "rb") as fh:
            return self.put_stream(iter(partial(fh.read, CHUNK), b""), filename)

    def put_stream(self, chunks: Iterable[bytes], filename: str, max_bytes: int | None = None,
                   expected_sha256: str | None = None) -> StoredArtifact:
        """Store the bytes of ``chunks`` under ``filename``, hashing and counting them while they arrive.

        More than ``max_bytes`` raises :class:`TooLarge` and stores nothing; bytes whose sha256 is not
        ``expected_sha256`` (when given) raise :class:`InvalidInput` and store nothing. The same content
        stored again (same name) returns the artifact already there.
        """
        check_filename(filename)
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f"{uuid.uuid4().hex}.{os.getpid()}.tmp"
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "xb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"{filename}: more than {max_bytes} bytes, the largest artifact accepted; "
                                       "nothing was stored")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            sha = digest.hexdigest()
            if expected_sha256 is not None and sha != expected_sha256:
                raise InvalidInput(f"{filename}: its bytes hash to {sha}, not the sha256 {expected_sha256} reported "
                                   "for them; nothing was stored (send the file again)",
                                   {"reported": expected_sha256, "actual": sha})
            dest = self.path_of(sha, filename)
            artifact = StoredArtifact(sha, size, self.location_of(sha, filename))
            if dest.is_file():
                if _hash_file(dest)[0] == sha:
                    return artifact
                logger.warning("replacing corrupt artifact %s with a good copy", dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
            logger.info("stored %s (%d bytes)", artifact.location, size)
            return artifact
        finally:
            tmp.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------------

    def _find(self, location_or_sha: str) -> tuple[str, Path]:
        if isinstance(location_or_sha, str) and "/" not in location_or_sha:
            sha = check_sha256(location_or_sha)
            directory = self.root / sha[:2] / sha
            files = sorted(p for p in directory.glob("*") if p.is_file() and not p.name.startswith(".")) \
                if directory.is_dir() else []
            if not files:
                raise NotFound(f"no artifact with sha256 {sha} in the store {self.root}")
            return sha, files[0]
        sha, filename = self.parse_location(location_or_sha)
        path = self.path_of(sha, filename)
        if not path.is_file():
            raise NotFound(f"no artifact {location_or_sha} in the store {self.root}")
        return sha, path

    def open_verified(self, location_or_sha: str) -> Path:
        """The path of a stored artifact whose bytes have just been checked against its sha256.

        Raises :class:`CorruptArtifact` when they do not match (the file is never handed out) and
        :class:`NotFound` when there is no such file.
        """
        sha, path = self._find(location_or_sha)
        _check(path, sha, *_hash_file(path))
        return path

    def read_verified(self, location_or_sha: str) -> bytes:
        """The bytes of a stored artifact, checked against its sha256 (the very bytes returned; the
        file is read once). Raises like :meth:`open_verified`."""
        sha, path = self._find(location_or_sha)
        data = path.read_bytes()
        _check(path, sha, hashlib.sha256(data).hexdigest(), len(data))
        return data

    def exists(self, location_or_sha: str) -> bool:
        try:
            self._find(location_or_sha)
        except NotFound:
            return False
        return True

    def locations(self) -> Iterator[tuple[str, Path]]:
        """Every stored file: ``(location, path)`` for each ``<sha[:2]>/<sha256>/<file name>`` under the root."""
        for first in sorted(p for p in self.root.iterdir() if len(p.name) == 2) if self.root.is_dir() else []:
            for folder in sorted(first.iterdir()) if first.is_dir() else []:
                for path in sorted(folder.iterdir()) if folder.is_dir() and is_sha256(folder.name) else []:
                    if path.is_file() and not path.is_symlink():
                        yield f"{first.name}/{folder.name}/{path.name}", path

    def remove_stale_incoming(self, max_age_seconds: float = 24 * 3600) -> int:
        """Delete temporary files left by writers that died; return how many were removed."""
        incoming, removed = self.root / INCOMING, 0
        cutoff = time.time() - max_age_seconds
        for p in incoming.glob("*.tmp") if incoming.is_dir() else []:
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
