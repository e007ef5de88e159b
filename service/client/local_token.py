"""The token of the registry's own machine: what replaces "anonymous from loopback".

``nestml-registry serve`` keeps a publisher token for the principal ``local`` (the owner of the names its
machine's user publishes, as anonymous publishing did before) in ``$NESTML_REGISTRY_HOME/local-token``,
a file only the user who runs the server can read (mode 0600, written through a temporary file and a
rename). The CLI and :class:`~nestml_registry.service.client.registry_client.RegistryClient` on that machine, talking to
a loopback address without a token of their own, send it by themselves, as Jupyter's clients do. A web
page, a tunnel or a relay has nothing to present, so none of them can publish. ``NESTML_REGISTRY_LOCAL_TOKEN=0``
turns it off (then every publisher needs a token of their own).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from nestml_registry.service.settings import ENV_PREFIX, default_home, is_loopback

logger = logging.getLogger(__name__)
FILE_NAME = "local-token"
LOCAL = "local"  # registry.tables.LOCAL: the principal of this machine's user
TOKEN_PREFIX = "nrt_"  # registry.tokens.PREFIX (this module is imported by clients: no database code)


def token_path(home: Path) -> Path:
    return home / FILE_NAME


def ensure(home: Path, database_url: str) -> Path:
    """The local token file under ``home``, kept when its token is still valid in this database, else made anew."""
    from nestml_registry.registry import tokens
    from nestml_registry.registry.db import make_engine, make_sessionmaker
    from nestml_registry.registry.records import record_event

    path = token_path(home)
    secret = _read(path)
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as s:
            row = tokens.find_token(s, secret) if secret else None
            if row is not None and row.name == LOCAL and row.role == "publisher":
                return path
            row, secret = tokens.create_token(s, LOCAL, "publisher")
            record_event(s, "serve", "token_create", LOCAL, {"token": row.id, "role": "publisher", "file": str(path)})
    finally:
        engine.dispose()
    _write_private(path, secret)
    logger.info("wrote this machine's publisher token (principal %r) to %s", LOCAL, path)
    return path


def _write_private(path: Path, secret: str) -> None:
    """``secret`` into ``path``, readable by this user only, through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def for_client(server_url: str, env: Mapping[str, str]) -> str | None:
    """The local token for a client of ``server_url`` that has none of its own: only for a loopback server,
    and only if this user can read the file (``$NESTML_REGISTRY_HOME``, else the default home)."""
    host = urlsplit(server_url).hostname or ""
    if not is_loopback(host):
        return None
    home = Path(env.get(f"{ENV_PREFIX}HOME") or default_home()).expanduser()
    return _read(token_path(home))


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.startswith(TOKEN_PREFIX) and len(text) < 200 else None
