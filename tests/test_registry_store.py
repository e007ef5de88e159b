"""The content-addressed artifact store: round trip, dedup, corruption caught on read, names, limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nestml_registry.registry.errors import CorruptArtifact, InvalidInput, NotFound, TooLarge
from nestml_registry.registry.store import ArtifactStore

DATA = b"\x7fELF" + bytes(range(256)) * 40


def test_round_trip_keeps_the_file_name(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = tmp_path / "build" / "izh_module.so"
    src.parent.mkdir()
    src.write_bytes(DATA)
    art = store.put_file(src, "izh_module.so")
    sha = hashlib.sha256(DATA).hexdigest()
    assert (art.sha256, art.size, art.filename) == (sha, len(DATA), "izh_module.so")
    assert art.location == f"{sha[:2]}/{sha}/izh_module.so"
    path = store.open_verified(art.location)
    assert path == store.path_of(sha, "izh_module.so") == tmp_path / "store" / art.location
    assert path.read_bytes() == DATA
    assert store.open_verified(sha) == path  # by digest alone
    assert store.exists(art.location) and store.exists(sha)
    assert not any((tmp_path / "store" / ".incoming").iterdir())  # no temporary file left


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put_stream([DATA[:100], DATA[100:]], "m_module.so")
    path = store.open_verified(first.location)
    mtime = path.stat().st_mtime_ns
    again = store.put_stream(iter([DATA]), "m_module.so")
    assert again == first
    assert path.stat().st_mtime_ns == mtime  # the existing file was kept
    assert [p.name for p in path.parent.iterdir()] == ["m_module.so"]
    # a fresh store object on the same directory (another process, another machine) finds it
    assert ArtifactStore(tmp_path).open_verified(first.sha256) == path


def test_corrupted_artifact_is_never_returned(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    art = store.put_stream([DATA], "m_module.so")
    path = store.path_of(art.sha256, "m_module.so")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # flip one bit
    path.write_bytes(bytes(raw))
    for ref in (art.location, art.sha256):
        with pytest.raises(CorruptArtifact, match=r"is corrupt.*will not be served") as info:
            store.open_verified(ref)
        assert info.value.details["expected"] == art.sha256
        assert info.value.details["actual"] == hashlib.sha256(raw).hexdigest()
    # storing the good bytes again repairs it
    assert store.put_stream([DATA], "m_module.so") == art
    assert store.open_verified(art.location).read_bytes() == DATA


@pytest.mark.parametrize("name", ["../evil.so", "a/b.so", "..", ".", ".hidden.so", "", "x y.so", "a\\b.so",
                                  "m\x00.so", "é.so", "x" * 256])
def test_bad_file_names_are_refused(tmp_path: Path, name: str) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match=r"invalid artifact file name"):
        store.put_stream([DATA], name)
    with pytest.raises(InvalidInput):
        store.path_of("0" * 64, name)
    assert not (tmp_path / "evil.so").exists()


@pytest.mark.parametrize("ref", ["../../etc/passwd", "ab/" + "a" * 64 + "/m.so", "aa/" + "a" * 64 + "/../x",
                                 "aa/" + "a" * 64, "/etc/passwd", "A" * 64, "a" * 63])
def test_bad_locations_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InvalidInput):
        ArtifactStore(tmp_path).open_verified(ref)


def test_missing_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(NotFound, match=r"no artifact"):
        store.open_verified("ab" * 32)
    with pytest.raises(NotFound, match=r"no artifact"):
        store.open_verified(f"{'ab' * 32}"[:2] + "/" + "ab" * 32 + "/m.so")
    assert not store.exists("ab" * 32)
    with pytest.raises(NotFound, match=r"no such file"):
        store.put_file(tmp_path / "nope.so", "nope.so")


def test_size_limit_while_streaming(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    consumed = []

    def chunks():
        for i in range(100):
            consumed.append(i)
            yield b"x" * 1000

    with pytest.raises(TooLarge, match=r"more than 5000 bytes"):
        store.put_stream(chunks(), "big_module.so", max_bytes=5000)
    assert len(consumed) == 6  # stopped reading at the first chunk past the limit
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []  # nothing stored, no temp file
    art = store.put_stream([b"x" * 5000], "ok_module.so", max_bytes=5000)  # exactly the limit is fine
    assert art.size == 5000


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    (tmp_path / ".incoming").mkdir()
    (tmp_path / ".incoming" / "dead.123.tmp").write_bytes(b"half")
    assert store.remove_stale_incoming(max_age_seconds=-1) == 1
    assert store.remove_stale_incoming() == 0
