"""One Settings object, read from the environment (prefix ``NESTML_REGISTRY_``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from compiler.pipeline import CompilerConfig, default_jobs

ENV_PREFIX = "NESTML_REGISTRY_"


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "nestml-registry"


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ValueError(f"{ENV_PREFIX}{name} must be positive, not {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path
    codegen_timeout: float = 900.0
    build_timeout: float = 900.0
    jobs: int = 1
    ccache: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get(ENV_PREFIX + "HOME") or _default_home()).expanduser()
        jobs_raw = env.get(ENV_PREFIX + "JOBS", "")
        try:
            jobs = int(jobs_raw) if jobs_raw else default_jobs()
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}JOBS={jobs_raw!r} is not a whole number") from exc
        return cls(
            home=home,
            codegen_timeout=_float(env, "CODEGEN_TIMEOUT", 900.0),
            build_timeout=_float(env, "BUILD_TIMEOUT", 900.0),
            jobs=max(1, jobs),
            ccache=env.get(ENV_PREFIX + "CCACHE", "1") not in ("0", "false", "no"),
        )

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def compiler_config(self) -> CompilerConfig:
        return CompilerConfig(cache_dir=self.cache_dir, codegen_timeout=self.codegen_timeout,
                              build_timeout=self.build_timeout, jobs=self.jobs, ccache=self.ccache)
