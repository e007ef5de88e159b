"""Compiler diagnostics: one record shape for NESTML messages, C++ errors and our own checks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

_CXX_ERROR_RE = re.compile(r"^(?P<file>[^\s:][^:\n]*):(?P<line>\d+):(?P<col>\d+): (?:fatal )?error: (?P<msg>.*)$",
                           re.MULTILINE)
_CXX_OTHER_RE = re.compile(r"^.*(?:error|Error|ERROR)[: ].*$", re.MULTILINE)


@dataclass(frozen=True)
class Diagnostic:
    """A message about a source, lines and columns 1-based as editors expect."""

    file: str | None
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    severity: str  # "error" | "warning"
    message: str
    code: str | None = None

    def format(self) -> str:
        where = self.file or "<build>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnostic:
        fields = cls.__dataclass_fields__
        return cls(**{k: data.get(k) for k in fields})  # type: ignore[arg-type]  # (a stored document)

    @classmethod
    def error(cls, message: str, file: str | None = None, line: int | None = None,
              column: int | None = None, code: str | None = None) -> Diagnostic:
        return cls(file, line, column, line, column, "error", message, code)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def first_cxx_error(log_text: str) -> tuple[str, int | None, int | None, str] | None:
    """The first compiler error in a build log: (file, line, column, message), or the first line
    that mentions an error (cmake or linker), or None."""
    m = _CXX_ERROR_RE.search(log_text)
    if m:
        return m["file"], int(m["line"]), int(m["col"]), m["msg"].strip()
    m = _CXX_OTHER_RE.search(log_text)
    if m:
        return "", None, None, m.group(0).strip()
    return None
