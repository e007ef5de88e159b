"""NESTML source files as the compiler sees them: named, decoded, normalised and hashed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from nestml_registry.compiler.errors import InputError

MAX_SOURCE_BYTES = 1024 * 1024
_MODEL_RE = re.compile(r"^[ \t]*model[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)
_DOCSTRING_RE = re.compile(r'"""(?:.|\n)*?"""')
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def display_name(name: str) -> str:
    """The base name of an uploaded or given file, safe to print; never used as a path."""
    base = PurePath(name.replace("\\", "/")).name.strip()
    base = _SAFE_NAME_RE.sub("_", base)
    if not base or base in {".", ".."}:
        raise InputError(f"invalid file name {name!r}: give each source a name such as 'my_neuron.nestml'")
    return base[:128]


@dataclass(frozen=True)
class ModelDecl:
    """A ``model <name>:`` line found in a source."""

    name: str
    line: int

    @property
    def kind(self) -> str:
        # NESTML's own rule (CodeGeneratorUtils.get_model_types_from_names)
        return "synapse" if self.name.endswith("synapse") else "neuron"


@dataclass(frozen=True)
class Source:
    """One .nestml file: its display name and its normalised text."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @classmethod
    def from_bytes(cls, name: str, data: bytes, max_bytes: int | None = MAX_SOURCE_BYTES) -> Source:
        """Decode and normalise ``data``; raise :class:`InputError` for what NESTML cannot read, or for more
        than ``max_bytes`` (None: the caller has limited the size already, as the API's upload limit does)."""
        shown = display_name(name)
        if max_bytes is not None and len(data) > max_bytes:
            raise InputError(f"{shown}: file is {len(data)} bytes, more than the {max_bytes} allowed")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InputError(
                f"{shown}:{line}: file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "save it as UTF-8 and try again"
            ) from exc
        return cls.from_text(shown, text)

    @classmethod
    def from_text(cls, name: str, text: str) -> Source:
        shown = display_name(name)
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        if "\x00" in text:
            raise InputError(f"{shown}: file contains NUL characters; it is not a NESTML text file")
        if not text.strip():
            raise InputError(f"{shown}: file is empty; a NESTML file defines at least one 'model <name>:'")
        if not text.endswith("\n"):
            text += "\n"
        return cls(shown, text)

    @classmethod
    def from_path(cls, path: str | Path, max_bytes: int | None = MAX_SOURCE_BYTES) -> Source:
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise InputError(f"{path}: is a directory; give the .nestml files in it") from exc
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        return cls.from_bytes(p.name, data, max_bytes)

    def models(self) -> list[ModelDecl]:
        """The models this file declares, found without running NESTML (docstrings are skipped)."""
        blanked = _DOCSTRING_RE.sub(lambda m: "\n" * m.group(0).count("\n"), self.text)
        found = []
        for m in _MODEL_RE.finditer(blanked):
            line = blanked.count("\n", 0, m.start()) + 1
            found.append(ModelDecl(m.group(1), line))
        return found
