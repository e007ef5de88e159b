"""What every command group of the ``nestml-registry`` CLI shares: exit statuses, the options of commands
that talk to a registry, and the one way an error is shown (a line on stderr; with ``--json``, also the
error document on stdout, in the API's shape and with the error's own code)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestml_registry.service.client import RegistryClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SERVER_HELP = "the registry's URL (default: $NESTML_REGISTRY_URL, else http://127.0.0.1:8000)"


class UsageError(Exception):
    """Bad arguments or input: printed as one line, exit status 2."""

    code = "usage_error"


def remote_options(p: argparse.ArgumentParser, json_help: str) -> None:
    """The options every command that talks to a registry takes."""
    p.add_argument("--server", metavar="URL", default=argparse.SUPPRESS, help=SERVER_HELP)
    p.add_argument("--json", action="store_true", help=json_help)


def registry_client(args: argparse.Namespace) -> RegistryClient:
    from nestml_registry.service.client import RegistryClient  # only for commands that talk to a server

    return RegistryClient.from_env(server=getattr(args, "server", None))


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def error_document(exc: BaseException, code: str | None = None) -> dict[str, Any]:
    """``{"error": {"code", "message", "details"[, "status"]}}`` of an error: its own ``code``, ``message``,
    ``details`` and (a registry's answer) ``status`` where it has them."""
    error: dict[str, Any] = {"code": code or getattr(exc, "code", None) or "error",
                             "message": getattr(exc, "message", None) or str(exc),
                             "details": dict(getattr(exc, "details", None) or {})}
    if getattr(exc, "status", None) is not None:
        error["status"] = exc.status  # type: ignore[attr-defined]
    return {"error": error}


def report_error(args: argparse.Namespace, exc: BaseException, exit_status: int = EXIT_USAGE,
                 code: str | None = None) -> int:
    """Show ``exc`` as the CLI shows every error; return ``exit_status``."""
    document = error_document(exc, code)
    if getattr(args, "json", False):
        print(json.dumps(document))
    print(f"nestml-registry: error: {document['error']['message']}", file=sys.stderr)
    return exit_status
