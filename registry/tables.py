"""The registry's tables (SQLAlchemy 2 declarative). The schema itself is made by the migrations in
``registry/migrations``; keep the two in step (the tests compare them).

Timestamps are timezone-aware UTC in Python on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256_LEN = 64
NAME_LEN = 255
TOOLCHAIN_LEN = 200
ROLES = ("reader", "publisher", "admin", "worker")
KINDS = ("neuron", "synapse")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class BuildStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Source(Base):
    """One normalised .nestml text, stored once whatever the number of builds that use it."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Build(Base):
    """One compile of a set of sources for one toolchain, identified by the compiler's build key."""

    __tablename__ = "builds"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index(None, "status", "toolchain", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(SHA256_LEN), unique=True)
    status: Mapped[BuildStatus] = mapped_column(
        Enum(BuildStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e],
             validate_strings=True),
        default=BuildStatus.QUEUED)
    toolchain: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN))
    request: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(NAME_LEN))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    stage: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[list[Any]] = mapped_column(default=list)
    log: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # seconds per stage of the last attempt
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id"), index=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    built_by: Mapped[str | None] = mapped_column(String(NAME_LEN))  # the lease owner that reported it (0010)
    # with agreement required (0011): the modules workers reported, and "|who|...|" of those (registry.agreement)
    reports: Mapped[list[Any] | None] = mapped_column(JSON)
    reported_by: Mapped[str | None] = mapped_column(Text)
    # 0012: sha256 over what reaches code generation (comments out): a succeeded build's module serves a later
    # request that differs only in comments (registry.same_code); the models it published, for that reuse;
    # and whether its submitter allowed a new version that drops parameters, state or ports
    code_key: Mapped[str | None] = mapped_column(String(SHA256_LEN), index=True)
    models: Mapped[list[Any] | None] = mapped_column(JSON)
    allow_breaking: Mapped[bool] = mapped_column(default=False, server_default=false())

    module: Mapped[Module | None] = relationship(lazy="joined")
    sources: Mapped[list[BuildSource]] = relationship(order_by="BuildSource.position", cascade="all, delete-orphan",
                                                      lazy="selectin")

    def __repr__(self) -> str:
        return f"<Build {self.id} {self.status} {self.key[:12]} {self.toolchain}>"


class BuildSource(Base):
    """A build's sources, in the order the build request gives them."""

    __tablename__ = "build_sources"

    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))

    source: Mapped[Source] = relationship(lazy="joined")


class Module(Base):
    """A NEST extension module file in the artifact store."""

    __tablename__ = "modules"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    size: Mapped[int] = mapped_column(BigInteger)
    toolchain: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN), index=True)
    location: Mapped[str] = mapped_column(String(1024))
    # every name the module registers in NEST (variants included): two modules that share one
    # cannot be loaded into one NEST process
    registers: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


LOCAL_OWNER = "local"  # the principal that anonymous publishing (from this machine only) publishes as


class ModelName(Base):
    """A model name as NEST registers it, and who may publish new versions of it."""

    __tablename__ = "model_names"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(NAME_LEN))  # a principal; before migration 0003, None
    # the NESTML model the name was generated from (migration 0009): one owner for X, X_nestml, X__with_S...
    family: Mapped[str | None] = mapped_column(String(NAME_LEN), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One behaviour of a model: a new version for each new content digest."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("name", "content_digest"),
        CheckConstraint("kind IN ('neuron', 'synapse')", name="kind"),
        CheckConstraint("version > 0", name="version_positive"),
        Index(None, "created_at"),  # the models list, most recent first, a page at a time
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(ForeignKey("model_names.name"))
    version: Mapped[int]
    content_digest: Mapped[str] = mapped_column(String(SHA256_LEN))
    nestml_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    kind: Mapped[str] = mapped_column(String(16))
    source_sha256: Mapped[str | None] = mapped_column(String(SHA256_LEN))
    parameters: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[list[Any]] = mapped_column(default=list)
    input_ports: Mapped[list[Any]] = mapped_column(default=list)
    receptor_types: Mapped[dict[str, Any]] = mapped_column(default=dict)
    variants: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # from the source text (registry.model_text) when published: the model's one-line description and
    # the lower-case words a search matches; who published this version (the principal)
    description: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    # metadata its owner gave (registry.metadata.check_given), beside what its comment says
    given_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # withdrawn by its owner or an admin (registry.yanking): never chosen for an unpinned reference
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    yanked_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    yanked_at: Mapped[datetime | None]


class ModelModule(Base):
    """The module that provides a model version on one toolchain (one per version and toolchain)."""

    __tablename__ = "model_modules"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                                  primary_key=True)
    toolchain: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN), primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id"), index=True)

    module: Mapped[Module] = relationship(lazy="joined")


class Token(Base):
    """An API token; only its sha256 is stored."""

    __tablename__ = "tokens"
    __table_args__ = (CheckConstraint("role IN ('reader', 'publisher', 'admin', 'worker')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(SHA256_LEN), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # a worker token's toolchains, set by an admin (migration 0010): it may serve these and no other
    toolchains: Mapped[list[str] | None] = mapped_column(JSON)
    # a web page session: the token typed at sign-in (migration 0010); see registry.tokens
    session_of: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))


class AuditEvent(Base):
    """Who did what to which subject."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(NAME_LEN))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RegistryState(Base):
    """One row: the registry's generation, one more with every audited change (0013). Changes are
    serialised on this row, so a reader that sees generation G sees every change up to G and no other:
    the API keeps answers per generation (``service.read_cache``)."""

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class KnownToolchain(Base):
    """A toolchain some compile worker serves (``nestml_registry.compiler.toolchain.Toolchain.id``), as the worker
    reported it when it started: the API queues builds only for toolchains seen here."""

    __tablename__ = "toolchains"

    id: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN), primary_key=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Toolchain.to_dict()
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # migration 0010: a toolchain first reported by an HTTP worker waits for an admin's approval (never the
    # default, nothing queued for it); those of database workers (the lab's own machines) are approved
    approved: Mapped[bool] = mapped_column(default=True, server_default=true())
    first_seen_by: Mapped[str | None] = mapped_column(String(NAME_LEN))


class WorkerRow(Base):
    """A compile worker's heartbeat: which toolchain it serves, until when it counts as alive, what it
    is doing, and what went wrong lately (``compiler/`` errors are builds' own; these are the worker's)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    toolchain: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN), index=True)
    host: Mapped[str] = mapped_column(String(NAME_LEN))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # alive until then unless it beats again
    stopped_at: Mapped[datetime | None]
    build_id: Mapped[int | None]
    builds: Mapped[int] = mapped_column(default=0)
    retries: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class CharacterisationStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"

    def __str__(self) -> str:
        return self.value


class Characterisation(Base):
    """How a model version behaves in NEST (``nestml_registry.compiler.protocol``) and how it compares with
    its NEST counterpart, measured by a worker with the version's module for ``toolchain`` (once per
    toolchain); queued, leased and swept like a build."""

    __tablename__ = "characterisations"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'not_applicable')", name="status"),
        CheckConstraint("verdict IN ('agrees', 'differs', 'failed')", name="verdict"),
        UniqueConstraint("model_version_id", "toolchain"),
        Index(None, "status", "toolchain", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    toolchain: Mapped[str] = mapped_column(String(TOOLCHAIN_LEN))
    status: Mapped[str] = mapped_column(String(16), default=CharacterisationStatus.QUEUED.value)
    protocol: Mapped[int | None]  # the protocol's version of the stored result
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(NAME_LEN))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    # against the version's NEST counterpart (compiler.counterparts; the report is result["check"]): agrees,
    # differs or failed; None where it has none
    verdict: Mapped[str | None] = mapped_column(String(16))
    # what differs from the same version's result on another toolchain (re-validation), None: nothing
    changed: Mapped[str | None] = mapped_column(Text)
