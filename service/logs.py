"""The logging of the entry points (the CLI, and each worker process it spawns): what goes to stderr, and
the one line a long-running command says when it starts. Library code only logs (``getLogger(__name__)``)."""

from __future__ import annotations

import logging
import sys

STARTUP_LOGGER = "nestml_registry.startup"  # the one line a long-running command says when it starts


def configure_logging(verbose: bool) -> None:
    """The CLI's logging (an entry point's, and a spawned worker process's): warnings and errors on stderr,
    everything from INFO on with ``-v``; a start-up line (:data:`STARTUP_LOGGER`) either way; and no lines
    from Alembic's plugin set-up, which drown what the registry says."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:  # libraries (BMTK) that set their own loggers' levels
        handler.setLevel(level)
    startup = logging.getLogger(STARTUP_LOGGER)
    startup.setLevel(logging.INFO)
    if not verbose and not startup.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        startup.addHandler(handler)
        startup.propagate = False
