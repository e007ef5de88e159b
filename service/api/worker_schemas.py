"""The documents of the HTTP worker protocol (``/v1/worker/...``): what a compile worker that reaches the
registry only over HTTP sends and gets. Each request names the worker (``worker_id``, unique to its
process); the registry prefixes it with the token's name, so one token's workers cannot act on another's
leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

WORKER_ID = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@+-]+$",
                  description="The worker process's own id, e.g. host:pid:random")
TOOLCHAIN = Field(min_length=1, max_length=200, description="The toolchain id the worker builds for")
MAX_LOG = 1024 * 1024


class Hello(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = WORKER_ID


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid")

    toolchain: dict[str, Any] = Field(description="The toolchain's description (compiler.toolchain.Toolchain)")


class Beat(Hello):
    toolchain: str = TOOLCHAIN
    host: str = Field(max_length=255)
    pid: int = Field(ge=0, le=2**31 - 1)
    alive_for: float = Field(gt=0, le=86400, description="Seconds it counts as alive (the API caps it near a lease)")
    build_id: int | None = None
    builds: int = Field(0, ge=0)
    retries: int = Field(0, ge=0)
    last_error: str | None = Field(None, max_length=2000)
    sent_at: datetime | None = Field(None, description="The worker's clock: compared with the registry's (a worker "
                                                       "far off is flagged), never used for leases or liveness")


class Claim(Hello):
    toolchain: str = TOOLCHAIN
    lease_seconds: float = Field(gt=0, le=86400)


class SourceFile(BaseModel):
    name: str
    sha256: str
    text: str


class ClaimedBuild(BaseModel):
    """A build leased to the worker: what it compiles."""

    id: int
    key: str
    request: dict[str, Any]
    sources: list[SourceFile]


class Renew(Hello):
    lease_seconds: float = Field(gt=0, le=86400)
    stage: str | None = Field(None, max_length=200)
    beat: Beat


class Failed(Hello):
    diagnostics: list[dict[str, Any]] = Field(max_length=10_000)
    log: str | None = Field(None, max_length=MAX_LOG)
    timings: dict[str, float] | None = None


class Succeeded(Failed):
    """The module was uploaded first (``POST .../module``); this names it and the models it registers."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    module_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*module$", max_length=255)
    models: list[dict[str, Any]] = Field(max_length=1000)


class Outcome(BaseModel):
    status: str = Field(description="succeeded, or failed when the registry refused the result (see error)")
    error: str | None = None


class ClaimedCharacterisation(BaseModel):
    id: int
    model: str
    version: int
    module_sha256: str
    module_name: str
    nestml_name: str | None = None  # with parameters and state: to check it against its NEST counterpart
    parameters: list[Any] = []
    state: list[Any] = []
    kind: str = "neuron"


class CharacterisationDone(Hello):
    result: dict[str, Any]
    seconds: float = Field(ge=0)
