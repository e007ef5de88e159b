"""What callers of the registry client catch and test: its one error type, and the statuses a build ends in."""

from __future__ import annotations

from typing import Any

FINAL_STATUSES = ("succeeded", "failed")


class RegistryClientError(Exception):
    """A request the registry refused, or a registry that did not answer.

    ``status`` is the HTTP status (None when no answer came), ``code`` the server's error code,
    ``details`` its details (a dict, possibly empty). ``retry_after`` is the server's Retry-After, and
    ``transient`` says that no answer came for a reason that may pass (a refused or cut connection)."""

    retry_after: str | None = None
    transient: bool = False

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details if details is not None else {}

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The server's error shape, for ``--json`` output."""
        return {"error": {"code": self.code or "client_error", "message": self.message, "details": self.details,
                          "status": self.status}}
