"""Integrity of files, in one place for every package: writes a reader never sees half of (a temporary
file, fsync, rename), sha256 digests, the validators of digests and plain file names, and what a NEST
module file is built for (ELF machine, C++ string ABI)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

CHUNK = 1024 * 1024
MAX_FILE_NAME = 255
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# a plain file name: never a path, never hidden, never '.' or '..'
FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# ELF e_machine values of the platforms NEST wheels exist for
ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm", 21: "ppc64le", 243: "riscv64"}
_NEST_SYMBOL_RE = re.compile(rb"_ZNK?4nest[A-Za-z0-9_]+")


def is_sha256(value: object) -> bool:
    """64 lower-case hexadecimal digits."""
    return isinstance(value, str) and SHA256_RE.fullmatch(value) is not None


def is_file_name(value: object) -> bool:
    """A plain file name (letters, digits, '_', '-', '.'; not starting with '.'; at most 255 characters)."""
    return isinstance(value, str) and len(value) <= MAX_FILE_NAME and FILE_NAME_RE.fullmatch(value) is not None


def elf_machine(head: bytes) -> str | None:
    """The platform an ELF file is built for (``x86_64``, ``aarch64``, ...), None if it is not ELF."""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    number = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(number, f"machine {number}")


def nest_string_abi(data: bytes) -> int | None:
    """The C++ string ABI of a library linked against NEST, from the ``nest::`` symbols it exports or
    imports: 1 (``std::__cxx11::basic_string``), 0 (the old one), None when it names no ``nest::`` symbol."""
    symbols = set(_NEST_SYMBOL_RE.findall(data))
    if not symbols:
        return None
    return 1 if any(b"__cxx11" in s for s in symbols) else 0


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomic(src: Path, dest: Path, mode: int = 0o644) -> str:
    """Copy ``src`` to ``dest`` atomically; return the sha256 of what was written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
