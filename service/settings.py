"""One Settings object, read from the environment (prefix ``NESTML_REGISTRY_``)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.steps import default_jobs

if TYPE_CHECKING:
    from compiler.pipeline import CompilerConfig

ENV_PREFIX = "NESTML_REGISTRY_"


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "nestml-registry"


class _Env:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(ENV_PREFIX + name)
        return default if value is None or value == "" else value

    def number(self, name: str, default: float, *, whole: bool = False) -> float:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}{name}={raw!r} is not a {'whole ' if whole else ''}number") from exc
        if value <= 0:
            raise ValueError(f"{ENV_PREFIX}{name} must be positive, not {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{name}={raw!r}: use 1 or 0")

    def optional_flag(self, name: str) -> bool | None:
        return None if self.str(name) is None else self.flag(name, False)


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
    """Everything configurable, from ``NESTML_REGISTRY_*`` variables (see the README's table)."""

    home: Path
    database_url: str
    store_dir: Path
    cache_dir: Path
    codegen_timeout: float = 900.0
    build_timeout: float = 900.0
    jobs: int = 1
    ccache: bool = True
    cxxflags: str = ""  # extra C++ flags for every module (part of the toolchain: another binary)
    lease_seconds: float = 60.0
    max_attempts: int = 3
    poll_seconds: float = 1.0
    # the HTTP API
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 5 * 1024 * 1024  # a whole POST /v1/builds body
    max_files: int = 64  # .nestml files in one build
    artifact_cache_bytes: int = 64 * 1024 * 1024  # verified module files kept in memory for downloads
    read_requires_token: bool = False
    allow_anonymous_publish: bool | None = None  # None: only when the server listens on loopback

    @property
    def anonymous_publish(self) -> bool:
        """Whether builds may be submitted without a token (see ``allow_anonymous_publish``)."""
        if self.allow_anonymous_publish is not None:
            return self.allow_anonymous_publish
        return is_loopback(self.host)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = _Env(dict(os.environ if env is None else env))
        home = Path(e.str("HOME") or _default_home()).expanduser()
        return cls(
            home=home,
            database_url=e.str("DATABASE_URL") or f"sqlite:///{home / 'registry.db'}",
            store_dir=Path(e.str("STORE") or home / "artifacts").expanduser(),
            cache_dir=Path(e.str("CACHE") or home / "cache").expanduser(),
            codegen_timeout=e.number("CODEGEN_TIMEOUT", 900.0),
            build_timeout=e.number("BUILD_TIMEOUT", 900.0),
            jobs=int(e.number("JOBS", default_jobs(), whole=True)),
            ccache=e.flag("CCACHE", True),
            cxxflags=(e.str("CXXFLAGS") or "").strip(),
            lease_seconds=e.number("LEASE_SECONDS", 60.0),
            max_attempts=int(e.number("MAX_ATTEMPTS", 3, whole=True)),
            poll_seconds=e.number("POLL_SECONDS", 1.0),
            host=e.str("HOST") or "127.0.0.1",
            port=int(e.number("PORT", 8000, whole=True)),
            max_upload_bytes=int(e.number("MAX_UPLOAD_BYTES", 5 * 1024 * 1024, whole=True)),
            max_files=int(e.number("MAX_FILES", 64, whole=True)),
            artifact_cache_bytes=int(e.number("ARTIFACT_CACHE_BYTES", 64 * 1024 * 1024, whole=True)),
            read_requires_token=e.flag("READ_REQUIRES_TOKEN", False),
            allow_anonymous_publish=e.optional_flag("ALLOW_ANONYMOUS_PUBLISH"),
        )

    def compiler_config(self) -> CompilerConfig:
        from compiler.pipeline import CompilerConfig

        return CompilerConfig(cache_dir=self.cache_dir, codegen_timeout=self.codegen_timeout,
                              build_timeout=self.build_timeout, jobs=self.jobs, ccache=self.ccache,
                              cxxflags=self.cxxflags)
