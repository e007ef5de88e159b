"""A registry's backup (its database and its artifact store, taken while it runs) and its restore into an
empty registry.

A backup is a folder:

- ``database.sqlite3`` (SQLite's online backup API: a consistent copy while the registry writes) or
  ``database.pgdump`` (``pg_dump --format=custom``: one consistent snapshot of a PostgreSQL database);
- ``artifacts/``: the store's module files, each checked against its name's sha256 as it is copied. They are
  copied after the database, and a module file is stored before the database names it, so every module
  the snapshot names is in the copy (files stored meanwhile come along unnamed: ``store verify`` reports
  them, ``--repair`` removes them);
- ``manifest.json``: format, the schema revision, the database kind, what was copied.

It is written as ``.DEST.partial-*`` and renamed to ``DEST`` at the end: a failed backup leaves no folder
that looks like one. A restore needs an empty database (no tables) and an empty store, checks the
manifest and every file before writing anything, restores the database in one transaction (PostgreSQL:
``pg_restore --single-transaction``), copies the files in, then migrates the database to this release's
head (restore, then upgrade: how a registry moves to a new release from a backup).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from nestml_registry.about import release
from nestml_registry.compiler.integrity import copy_atomic, sha256_file
from nestml_registry.registry import db
from nestml_registry.registry.errors import InvalidInput, RegistryError
from nestml_registry.registry.store import ArtifactStore

logger = logging.getLogger(__name__)
FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE, PG_FILE, ARTIFACTS = "database.sqlite3", "database.pgdump", "artifacts"
PG_TIMEOUT = 3600.0


def _pg(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump and pg_restore (no password in their arguments: it goes in PGPASSWORD)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT)
    except FileNotFoundError as exc:
        raise RegistryError(f"{argv[0]} is not installed: {what} of a PostgreSQL database needs PostgreSQL's "
                            "client programs of the server's major version (Debian: apt install "
                            "postgresql-client)") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryError(f"{argv[0]} did not finish within {PG_TIMEOUT:g} s") from exc
    if proc.returncode != 0:
        raise RegistryError(f"{argv[0]} failed ({what}): {proc.stderr.strip()[-1500:]}")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput(f"the SQLite database {url!r} is not a file: there is nothing to back up or restore")
    return Path(database)


def _sqlite_backup(path: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the registry reads and writes."""
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def _copy_store(src: ArtifactStore, dest: Path) -> tuple[int, int, list[str]]:
    """Every stored file into ``dest`` (its location kept), each checked as it is copied: (files, bytes,
    damaged locations left out)."""
    files = size = 0
    damaged = []
    for location, path in src.locations():
        sha, _ = src.parse_location(location)
        target = dest / location
        if copy_atomic(path, target) != sha:
            target.unlink(missing_ok=True)
            damaged.append(location)
            continue
        files, size = files + 1, size + target.stat().st_size
    return files, size, damaged


def backup(url: str, store_dir: Path, dest: Path) -> dict[str, Any]:
    """Back the registry at ``url`` with its store ``store_dir`` up into the new folder ``dest``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest} exists and is not an empty folder: give a new folder to back up into")
    if db.is_sqlite(url) and not _sqlite_path(url).is_file():
        raise InvalidInput(f"there is no registry database at {_sqlite_path(url)}: check NESTML_REGISTRY_HOME (or "
                           "NESTML_REGISTRY_DATABASE_URL)")
    revision = db.current_revision(url)
    if revision is None:
        raise InvalidInput("the database has never been migrated: there is no registry to back up")
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    work.mkdir(parents=True)
    try:
        if db.is_sqlite(url):
            _sqlite_backup(_sqlite_path(url), work / SQLITE_FILE)
        else:
            libpq, env = _pg(url)
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={work / PG_FILE}",
                  f"--dbname={libpq}"], env, "backing up")
        files, size, damaged = _copy_store(ArtifactStore(store_dir), work / ARTIFACTS)
        manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(),
                    "nestml_registry": release(), "revision": revision,
                    "database": "sqlite" if db.is_sqlite(url) else "postgresql", "files": files, "bytes": size,
                    "damaged": damaged}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if dest.exists():
            dest.rmdir()
        work.rename(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("backed up the registry (revision %s, %d module files) into %s", revision, files, dest)
    return manifest


def _manifest(src: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{src} is not a registry backup (no readable {MANIFEST}): give the folder "
                           "`nestml-registry backup` wrote") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{src}: a backup of format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                           f", which this release does not read (it reads format {FORMAT})")
    return manifest


def _check_empty(url: str, store: ArtifactStore) -> None:
    if db.is_sqlite(url):
        path = _sqlite_path(url)
        tables = _tables(url) if path.exists() and path.stat().st_size > 0 else []
    else:
        tables = _tables(url)
    if tables:
        raise InvalidInput(f"the database already holds tables ({', '.join(sorted(tables)[:5])}, ...): restore into an "
                           "empty database (a new NESTML_REGISTRY_DATABASE_URL, or a new NESTML_REGISTRY_HOME)")
    if next(store.locations(), None) is not None:
        raise InvalidInput(f"the artifact store {store.root} already holds files: restore into an empty one "
                           "(a new NESTML_REGISTRY_STORE)")


def _tables(url: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _check_files(src: Path, manifest: dict[str, Any]) -> list[tuple[str, Path]]:
    """Every file of the backup, checked against its name before anything is written."""
    copy = ArtifactStore(src / ARTIFACTS)
    found = list(copy.locations())
    for location, path in found:
        if sha256_file(path) != copy.parse_location(location)[0]:
            raise InvalidInput(f"{src}: the backed-up module {location} is damaged (its bytes do not match its "
                               "sha256): restore from another backup")
    if len(found) != manifest.get("files"):
        raise InvalidInput(f"{src}: the backup holds {len(found)} module files, its manifest {manifest.get('files')}: "
                           "it is incomplete; restore from another backup")
    database = src / (SQLITE_FILE if manifest.get("database") == "sqlite" else PG_FILE)
    if not database.is_file():
        raise InvalidInput(f"{src}: its database file {database.name} is missing")
    return found


def restore(url: str, store_dir: Path, src: Path) -> dict[str, Any]:
    """Restore the backup ``src`` into the empty registry at ``url`` with the empty store ``store_dir``."""
    src = Path(src)
    manifest = _manifest(src)
    wanted = "sqlite" if db.is_sqlite(url) else "postgresql"
    if manifest.get("database") != wanted:
        raise InvalidInput(f"{src} is a backup of a {manifest.get('database')} database and this registry's is "
                           f"{wanted}: restore it into a registry on {manifest.get('database')}")
    store = ArtifactStore(store_dir)
    _check_empty(url, store)
    found = _check_files(src, manifest)
    if wanted == "sqlite":
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        copy_atomic(src / SQLITE_FILE, path, mode=0o600)
    else:
        libpq, env = _pg(url)
        _run(["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
              f"--dbname={libpq}", str(src / PG_FILE)], env, "restoring")
    for location, path in found:
        copy_atomic(path, store.root / location)
    db.upgrade(url)
    revision = db.current_revision(url)
    logger.info("restored %s (revision %s, now %s) with %d module files", src, manifest["revision"], revision,
                len(found))
    return {**manifest, "restored_revision": revision}
