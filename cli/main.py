"""The ``nestml-registry`` command line: thin, one-line errors, exit status 0 / 1 / 2.

0 success, 1 a compile that failed with diagnostics, 2 bad usage or input (or a broken toolchain, or a
registry that refused a request or did not answer). With ``--json``, stdout carries one JSON document
and nothing else (an error: ``{"error": {"code", "message", "details"}}``, the API's shape). The registry
is ``--server URL`` (before or after the command) or ``$NESTML_REGISTRY_URL``; a token is
``$NESTML_REGISTRY_TOKEN``.

Each command group registers its own parser: :mod:`~nestml_registry.cli.build_commands` (compile,
push, build), :mod:`~nestml_registry.cli.model_commands` (models, show, pull),
:mod:`nestml_registry.cli.run_command` (run), :mod:`~nestml_registry.cli.server_commands` (serve,
worker, db), :mod:`~nestml_registry.cli.admin_command` (token, owner, audit) and
:mod:`~nestml_registry.cli.store_command` (store), :mod:`~nestml_registry.cli.upgrade_command`
(upgrade) and :mod:`~nestml_registry.cli.backup_command` (backup, restore).
"""

from __future__ import annotations

import argparse
import os
import sys

from nestml_registry.about import release
from nestml_registry.cli import (
    admin_command,
    backup_command,
    build_commands,
    check_command,
    library_command,
    model_commands,
    server_commands,
    store_command,
    upgrade_command,
)
from nestml_registry.cli import run_command as run_command
from nestml_registry.cli.command_line import SERVER_HELP, UsageError, report_error
from nestml_registry.cli.console import VisibleText
from nestml_registry.compiler.errors import CompilerError
from nestml_registry.registry.errors import RegistryError
from nestml_registry.service.client.errors import RegistryClientError
from nestml_registry.service.logs import configure_logging
from nestml_registry.service.settings import Settings, SettingsError

# the errors a command reports as one line (exit status 2); anything else is a bug and keeps its traceback
EXPECTED_ERRORS = (RegistryClientError, CompilerError, RegistryError, UsageError, SettingsError)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nestml-registry",
                                description="Compile NESTML models into NEST modules and share them.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    p.add_argument("--version", action="version", version=f"nestml-registry {release()}")
    p.add_argument("--server", metavar="URL", default=None, help=SERVER_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_commands.add_parsers(sub)
    upgrade_command.add_parser(sub)
    model_commands.add_parsers(sub)
    run_command.add_parser(sub)
    check_command.add_parser(sub)
    library_command.add_parsers(sub)
    server_commands.add_parsers(sub)
    admin_command.add_parsers(sub)
    store_command.add_parser(sub)
    backup_command.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.verbose)
    stdout = sys.stdout
    sys.stdout = VisibleText(stdout)  # a publisher's text never drives the terminal
    try:
        return args.func(args, Settings.from_env())
    except EXPECTED_ERRORS as exc:
        return report_error(args, exc)
    except KeyboardInterrupt:
        print("nestml-registry: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): say nothing more, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return 141
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
