"""Reading what a sandboxed build step left in its work folder, as the service's own user.

A step may have replaced any file or folder there with a symbolic link (to the database, the
store, a token file) or left a file larger than anything a build makes. Everything is therefore
opened relative to the work folder, one path component at a time, without following links, and
read only up to a bound: what comes out is the step's own data or an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nestml_registry.compiler.integrity import CHUNK

MAX_JSON_BYTES = 64 * 1024 * 1024


class OutputError(Exception):
    """A step's output is missing, not a regular file, or too large."""


@contextlib.contextmanager
def open_output(work: Path, relative: str, limit: int) -> Iterator[IO[bytes]]:
    """``work/relative`` opened for reading, never through a link; at most ``limit`` bytes."""
    parts = Path(relative).parts
    if not parts or any(p in ("..", "/", ".") for p in parts):
        raise OutputError(f"not a path inside the work folder: {relative}")
    fds: list[int] = []
    try:
        fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fds.append(fd)
        for part in parts[:-1]:
            fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            fds.append(fd)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except FileNotFoundError as exc:
        raise OutputError(f"{relative} is missing") from exc
    except OSError as exc:
        raise OutputError(f"{relative} cannot be read ({exc.strerror}; a link or not a folder)") from exc
    finally:
        for d in fds:
            os.close(d)
    fh = os.fdopen(fd, "rb")
    with fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{relative} is not a regular file")
        if st.st_size > limit:
            raise OutputError(f"{relative} is {st.st_size} bytes, more than the {limit} allowed")
        yield fh


def read_json(work: Path, relative: str, limit: int = MAX_JSON_BYTES) -> Any:
    with open_output(work, relative, limit) as fh:
        data = fh.read(limit + 1)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise OutputError(f"{relative} is not JSON") from exc


def copy_output(work: Path, relative: str, dest: Path, limit: int) -> str:
    """Copy ``work/relative`` to ``dest`` (a temporary file and a rename); return its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    try:
        with open_output(work, relative, limit) as fin, open(tmp, "wb") as fout:
            copied = 0
            while chunk := fin.read(CHUNK):
                copied += len(chunk)
                if copied > limit:
                    raise OutputError(f"{relative} grew past {limit} bytes while it was read")
                digest.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()
