"""Run a command as a member of control groups: ``python -I -S cgroup_join.py PROCS_FILE... -- ARGV...``

The first thing a sandboxed build step runs (as the worker's own user, before bubblewrap): it writes its
process id into each group's ``cgroup.procs`` and then becomes the step, so the step and everything it
starts are counted and limited together (see :mod:`nestml_registry.compiler.build_group`). It imports
nothing of this project and only the standard library's ``os`` and ``sys``.
"""

import os
import sys


def main(argv: list) -> None:
    split = argv.index("--")
    for procs in argv[:split]:
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    command = argv[split + 1:]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
