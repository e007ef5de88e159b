"""The API's in-memory LRU of verified module files."""

from __future__ import annotations

from nestml_registry.service.api.artifacts import Artifact, VerifiedArtifacts


def art(sha: str, size: int) -> Artifact:
    return Artifact(sha, f"{sha}.so", b"x" * size)


def test_bounded_by_bytes_least_recently_served_dropped_first() -> None:
    cache = VerifiedArtifacts(400)
    for sha in "abc":
        cache.put(art(sha, 100))
    assert cache.get("a") is not None  # now the most recently served
    cache.put(art("d", 100))
    cache.put(art("e", 100))
    assert cache.size <= 400
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("e") is not None


def test_large_files_and_a_disabled_cache_are_not_kept() -> None:
    cache = VerifiedArtifacts(400)
    cache.put(art("big", 101))  # more than a quarter of the cache
    assert cache.get("big") is None
    off = VerifiedArtifacts(0)
    off.put(art("a", 1))
    assert off.get("a") is None and off.size == 0
