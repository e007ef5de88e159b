"""One Settings object, read from the environment (prefix ``NESTML_REGISTRY_``)."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nestml_registry.compiler.request import MAX_FILES
from nestml_registry.compiler.steps import default_jobs

if TYPE_CHECKING:
    from nestml_registry.compiler.config import CompilerConfig
    from nestml_registry.compiler.sandbox import SandboxConfig

ENV_PREFIX = "NESTML_REGISTRY_"


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "nestml-registry"


class SettingsError(ValueError):
    """A ``NESTML_REGISTRY_*`` variable with a value that cannot be used; the message says which and why."""

    code = "invalid_setting"


class _Env:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(ENV_PREFIX + name)
        return default if value is None or value == "" else value

    def number(self, name: str, default: float, *, whole: bool = False, zero: bool = False) -> float:
        """A positive number (or 0 too, with ``zero``)."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not a {'whole ' if whole else ''}number") from exc
        if value < 0 or (value == 0 and not zero):
            raise SettingsError(f"{ENV_PREFIX}{name} must be {'0 or more' if zero else 'positive'}, not {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: use 1 or 0")

    def size(self, name: str, default: int) -> int:
        """Bytes, given as a whole number with an optional K, M or G (powers of 1024)."""
        raw = self.text(name)
        if raw is None:
            return default
        m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", raw, re.IGNORECASE)
        if m is None or int(m.group(1)) <= 0:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: give a size in bytes, e.g. 4G, 512M or 1073741824")
        return int(m.group(1)) * 1024 ** " KMG".index((m.group(2) or " ").upper())

    def files(self, name: str) -> int:
        """How many .nestml files one build may have: at most the compiler's own limit."""
        value = int(self.number(name, MAX_FILES, whole=True))
        if value > MAX_FILES:
            raise SettingsError(f"{ENV_PREFIX}{name}={value}: one module takes at most {MAX_FILES} .nestml files (the "
                                f"compiler's limit); give {MAX_FILES} or fewer")
        return value

    def hosts(self, name: str) -> tuple[str, ...]:
        """Host names, separated by commas (``*``: any)."""
        raw = self.text(name)
        if raw is None:
            return default_allowed_hosts()
        names = tuple(dict.fromkeys(n.strip().lower().strip("[]").rstrip(".") for n in raw.split(",") if n.strip()))
        bad = [n for n in names if n != "*" and not re.fullmatch(r"[a-z0-9_.:-]+", n)]
        if not names or bad:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: give host names separated by commas, e.g. "
                                "registry.lab,localhost,127.0.0.1 (or * for any)")
        return names

    def origins(self, name: str) -> tuple[str, ...]:
        """Web origins (``scheme://host[:port]``), separated by commas (``*``: any)."""
        raw = self.text(name)
        if raw is None:
            return ()
        found = tuple(dict.fromkeys(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip()))
        bad = [o for o in found if o != "*" and not re.fullmatch(r"https?://[a-z0-9_.\-\[\]:]+", o)]
        if not found or bad:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: give web origins separated by commas, e.g. "
                                "https://desktop.lab,http://desktop.lab:54286 (or * for any)")
        return found


@functools.cache
def default_allowed_hosts() -> tuple[str, ...]:
    """This machine's loopback names and its host name (a system call: no DNS look-up at start-up; a lab adds
    the names it reaches the registry by to NESTML_REGISTRY_ALLOWED_HOSTS)."""
    names = ["localhost", "127.0.0.1", "::1"]
    name = socket.gethostname().lower().rstrip(".")
    return tuple(names + ([name] if name and name not in names else []))


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything configurable, from ``NESTML_REGISTRY_*`` variables (docs/reference/settings.md, made from
    :data:`VARIABLES` below)."""

    home: Path
    database_url: str
    store_dir: Path
    cache_dir: Path
    codegen_timeout: float = 300.0
    build_timeout: float = 600.0
    jobs: int = 1
    ccache: bool = False
    # the sandbox of build steps (compiler.sandbox): off only when the operator says so
    sandbox: bool = True
    sandbox_user: str = "nestml-build"
    step_memory: int = 4 * 1024 ** 3
    step_file_bytes: int = 1024 ** 3
    step_processes: int = 512
    step_work_bytes: int = 4 * 1024 ** 3  # what one build's work folder may hold
    cxxflags: str = ""  # extra C++ flags for every module (part of the toolchain: another binary)
    lease_seconds: float = 60.0
    max_attempts: int = 3
    poll_seconds: float = 1.0
    # the HTTP API
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 5 * 1024 * 1024  # a whole POST /v1/builds body
    max_files: int = MAX_FILES  # .nestml files in one build (at most the compiler's limit)
    artifact_cache_bytes: int = 64 * 1024 * 1024  # verified module files kept in memory for downloads (0: none)
    read_requires_token: bool = False
    allow_anonymous_publish: bool = False  # True: anyone who reaches the API publishes as 'local' (service.auth)
    # the names state-changing requests may be sent to (service.request_origin); "*": any
    allowed_hosts: tuple[str, ...] = field(default_factory=default_allowed_hosts)
    local_token: bool = True  # serve writes a publisher token for this machine's user (service.local_token)
    db_connections: int = 10  # the API's database connections, and threads that use them (service.database)
    db_wait_seconds: float = 10.0  # a request waits this long for one, then gets 503 at_capacity
    module_cache_bytes: int = 2 * 1024 ** 3  # a worker's local build cache of modules (LRU beyond it)
    # characterisation of each new neuron version after its build (compiler.protocol), in its own time limit
    characterise: bool = True
    characterise_timeout: float = 120.0
    revalidate: bool = True
    # how many workers (of other machines or tokens) must build a module to the same bytes before it is published
    agreement: int = 1
    # NEST Desktop's front door, /compat/nestml-server (service.nestml_server): the toolchain it builds for
    # (None: the newest one a live worker serves), where it writes <module>.so for NEST Server, the origins
    # besides loopback ones whose pages may call it, and how long one generateModels waits for its build
    compat_toolchain: str | None = None
    compat_module_dir: Path | None = None
    compat_origins: tuple[str, ...] = ()
    compat_wait_seconds: float = 900.0

    @property
    def anonymous_publish_rule(self) -> str:
        """What ``allow_anonymous_publish`` means, in words (for the start-up line)."""
        return "allowed from anywhere" if self.allow_anonymous_publish else "refused (this machine's user has the " \
            "local token)"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = _Env(dict(os.environ if env is None else env))
        home = Path(e.text("HOME") or default_home()).expanduser()
        module_dir = e.text("COMPAT_MODULE_DIR")
        return cls(
            home=home,
            database_url=e.text("DATABASE_URL") or f"sqlite:///{home / 'registry.db'}",
            store_dir=Path(e.text("STORE") or home / "artifacts").expanduser(),
            cache_dir=Path(e.text("CACHE") or home / "cache").expanduser(),
            codegen_timeout=e.number("CODEGEN_TIMEOUT", 300.0),
            build_timeout=e.number("BUILD_TIMEOUT", 600.0),
            jobs=int(e.number("JOBS", default_jobs(), whole=True)),
            ccache=e.flag("CCACHE", False),
            sandbox=e.flag("SANDBOX", True),
            sandbox_user=e.text("SANDBOX_USER") or "nestml-build",
            step_memory=e.size("STEP_MEMORY", 4 * 1024 ** 3),
            step_file_bytes=e.size("STEP_FILE_BYTES", 1024 ** 3),
            step_processes=int(e.number("STEP_PROCESSES", 512, whole=True)),
            step_work_bytes=e.size("STEP_WORK_BYTES", 4 * 1024 ** 3),
            cxxflags=(e.text("CXXFLAGS") or "").strip(),
            lease_seconds=e.number("LEASE_SECONDS", 60.0),
            max_attempts=int(e.number("MAX_ATTEMPTS", 3, whole=True)),
            poll_seconds=e.number("POLL_SECONDS", 1.0),
            host=e.text("HOST") or "127.0.0.1",
            port=int(e.number("PORT", 8000, whole=True)),
            max_upload_bytes=int(e.number("MAX_UPLOAD_BYTES", 5 * 1024 * 1024, whole=True)),
            max_files=e.files("MAX_FILES"),
            artifact_cache_bytes=int(e.number("ARTIFACT_CACHE_BYTES", 64 * 1024 * 1024, whole=True, zero=True)),
            read_requires_token=e.flag("READ_REQUIRES_TOKEN", False),
            allow_anonymous_publish=e.flag("ALLOW_ANONYMOUS_PUBLISH", False),
            allowed_hosts=e.hosts("ALLOWED_HOSTS"),
            local_token=e.flag("LOCAL_TOKEN", True),
            db_connections=int(e.number("DB_CONNECTIONS", 10, whole=True)),
            db_wait_seconds=e.number("DB_WAIT_SECONDS", 10.0),
            module_cache_bytes=e.size("MODULE_CACHE_BYTES", 2 * 1024 ** 3),
            characterise=e.flag("CHARACTERISE", True),
            characterise_timeout=e.number("CHARACTERISE_TIMEOUT", 120.0),
            revalidate=e.flag("REVALIDATE", True),
            agreement=int(e.number("AGREEMENT", 1, whole=True)),
            compat_toolchain=e.text("COMPAT_TOOLCHAIN"),
            compat_module_dir=Path(module_dir).expanduser() if module_dir else None,
            compat_origins=e.origins("COMPAT_ORIGINS"),
            compat_wait_seconds=e.number("COMPAT_WAIT_SECONDS", 900.0),
        )

    def compiler_config(self) -> CompilerConfig:
        from nestml_registry.compiler.config import CompilerConfig

        return CompilerConfig(cache_dir=self.cache_dir, codegen_timeout=self.codegen_timeout,
                              build_timeout=self.build_timeout, jobs=self.jobs, ccache=self.ccache,
                              cxxflags=self.cxxflags, sandbox=self.sandbox_config(),
                              max_cache_bytes=self.module_cache_bytes)

    def sandbox_config(self) -> SandboxConfig:
        from nestml_registry.compiler.sandbox import Limits, SandboxConfig

        return SandboxConfig(self.sandbox, self.sandbox_user,
                             Limits(self.step_memory, self.step_file_bytes, self.step_processes,
                                    self.step_work_bytes))


@dataclass(frozen=True)
class Variable:
    """A ``NESTML_REGISTRY_*`` variable as the documentation lists it (the settings reference is made from
    :data:`VARIABLES`; a test checks that every variable the code reads is here)."""

    name: str  # without the prefix
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable('HOME', '`~/.local/share/nestml-registry`',
             'data directory'),
    Variable('DATABASE_URL', '`sqlite:///$HOME/registry.db`',
             'the registry database (SQLite or PostgreSQL)'),
    Variable('STORE', '`$NESTML_REGISTRY_HOME/artifacts`',
             'the artifact store (may be shared by a lab)'),
    Variable('CACHE', '`$NESTML_REGISTRY_HOME/cache`',
             "this machine's build cache (modules, logs, ccache, precompiled header)"),
    Variable('CODEGEN_TIMEOUT', '300',
             'seconds NESTML may take for one build (the shipped models take 2-15 s)'),
    Variable('BUILD_TIMEOUT', '600',
             'seconds the C++ compile and link (or cmake + make) may take'),
    Variable('JOBS', 'number of cores',
             'parallel C++ compile jobs per build'),
    Variable('CCACHE', '0',
             'use ccache (if installed) for the C++ steps; its folder is then writable to every build, so only'
             " for a single user's own models"),
    Variable('SANDBOX', '1',
             'run build steps in the sandbox; 0 runs them unsandboxed (limits still apply), which `/healthz`, '
             "`/metrics` and the worker's start-up line report"),
    Variable('SANDBOX_USER', '`nestml-build`',
             'the unprivileged user build steps run as when the service runs as root'),
    Variable('STEP_MEMORY', '4G',
             'address space of each build process, and (with a build group) the memory of the whole build '
             '(`K`, `M`, `G` suffixes)'),
    Variable('STEP_FILE_BYTES', '1G',
             'the largest file a build step may write'),
    Variable('STEP_PROCESSES', '512',
             'processes and threads of one build (with a build group), else of the sandbox user'),
    Variable('LEASE_SECONDS', '60',
             "a worker's lease on its build, renewed every third of it"),
    Variable('MAX_ATTEMPTS', '3',
             'how often a build may lose its worker before it fails'),
    Variable('POLL_SECONDS', '1',
             'how often an idle worker looks for work'),
    Variable('HOST', '127.0.0.1',
             'where `serve` listens (its address)'),
    Variable('PORT', '8000',
             'where `serve` listens (its port)'),
    Variable('MAX_UPLOAD_BYTES', '5 MiB',
             'largest upload (the one limit on a source file too; `push` leaves it to the server)'),
    Variable('MAX_FILES', '64',
             "most .nestml files in one upload (at most 64, the compiler's limit per module)"),
    Variable('ARTIFACT_CACHE_BYTES', '64 MiB',
             'checked module files the API keeps in memory for downloads (0: none)'),
    Variable('DB_CONNECTIONS', '10',
             "the API's database connections, and the threads that use them"),
    Variable('DB_WAIT_SECONDS', '10',
             'how long a request waits for one before 503 `at_capacity`'),
    Variable('MODULE_CACHE_BYTES', '2G',
             "a worker's local build cache of modules (least recently used evicted beyond it)"),
    Variable('CHARACTERISE', '1',
             'queue a characterisation (and the check against its NEST counterpart) of each new version after its '
             'build (read where builds are recorded: by database workers, and by the API for HTTP workers)'),
    Variable('REVALIDATE', '1',
             'when a new toolchain appears (a worker registers it, or an admin approves it), queue builds of the '
             'library (the newest version of every model with a NEST counterpart) for it, so that its '
             'characterisations and checks run there too'),
    Variable('CHARACTERISE_TIMEOUT', '120',
             'seconds one characterisation (one NEST process) may take'),
    Variable('RETRY_SECONDS', '120',
             'how long the client keeps retrying a read that met a busy or restarting server'),
    Variable('READ_REQUIRES_TOKEN', '0',
             'reading needs a reader token'),
    Variable('ALLOW_ANONYMOUS_PUBLISH', '0',
             "1: anyone who reaches the API publishes, as `local` (this machine's user has the local token "
             'instead)'),
    Variable('LOCAL_TOKEN', '1',
             '`serve` keeps a publisher token for `local` in `$NESTML_REGISTRY_HOME/local-token` (0600), which'
             " this machine's CLI and client use by themselves"),
    Variable('ALLOWED_HOSTS', "loopback names and this host's name",
             'the names (comma-separated; `*` any) that state-changing requests may be sent to: add the name a'
             ' lab reaches the registry by, e.g. `registry.lab`'),
    Variable('AGREEMENT', '1',
             'how many workers (of different tokens or machines) must build a module to the same bytes before '
             'it is published'),
    Variable('STEP_WORK_BYTES', '4G',
             "what one build's work folder may hold (watched while each step runs)"),
    Variable('URL', 'http://127.0.0.1:8000',
             'the registry the client, the CLI and simulation jobs talk to'),
    Variable('TOKEN', "(none; on the registry's machine, its local token)",
             "the client's token"),
    Variable('MODULE_CACHE', '`~/.cache/nestml-registry/modules`',
             'downloaded modules (`pull`, `run`)'),
    Variable('COMPAT_TOOLCHAIN', '(the newest live one)',
             "the toolchain NEST Desktop's front door builds for: NEST Server's"),
    Variable('COMPAT_MODULE_DIR', '(none)',
             'where the front door writes `<module_name>.so` for NEST Server (on its `LD_LIBRARY_PATH`)'),
    Variable('COMPAT_ORIGINS', '(loopback only)',
             'web origins besides loopback ones whose pages may call the front door (comma-separated; `*` any)'),
    Variable('COMPAT_WAIT_SECONDS', '900',
             'how long one `generateModels` waits for its build (then 503 `still_building`; asking again finds'
             ' it)'),
    Variable('CXXFLAGS', '(none)',
             'extra C++ flags for every module, e.g. `-O3 -march=native`; part of the toolchain, so set it '
             'alike on workers and simulation machines'),
)
