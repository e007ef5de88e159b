"""A model's metadata from its comment, as NESTML's shipped models write it, without a server."""

from __future__ import annotations

from pathlib import Path

from nestml_registry.registry import metadata, model_text


def test_the_shipped_comments_give_licence_references_dois_and_keywords(models_dir: Path) -> None:
    text = (models_dir / "neurons" / "aeif_cond_exp_neuron.nestml").read_text()
    found = metadata.of(model_text.comment_of(text), ["aeif_cond_exp_neuron"], model_text.description_of(text))
    assert found["license"] == "GPL-2.0-or-later"
    assert found["dois"] == ["10.1152/jn.00686.2005"]
    assert found["references"][0].startswith("[1] Brette R and Gerstner W (2005). Adaptive exponential")
    assert found["see_also"] == ["iaf_cond_exp", "aeif_cond_alpha"]
    assert found["keywords"] == ["integrate-and-fire", "conductance-based", "adaptive exponential"]
    every = [metadata.of(model_text.comment_of(p.read_text()), [p.stem], "") for p in models_dir.glob("*/*.nestml")]
    assert sum(bool(m["keywords"]) for m in every) > 30 and sum(m["license"] is not None for m in every) > 30


def test_a_publishers_own_metadata_is_read_and_bounded() -> None:
    comment = ("my_neuron - a test\n\nSPDX-License-Identifier: MIT\n\nAuthors\n+++++++\n\nAnn Author\nBob Builder\n\n"
               "References\n==========\n\n.. [a] One, doi:10.1234/abc.5).\n   continued\n\nA note after.\n")
    found = metadata.of(comment, ["my_neuron"], "a test")
    assert found["authors"] == ["Ann Author", "Bob Builder"] and found["license"] == "MIT"
    assert found["references"] == ["[a] One, doi:10.1234/abc.5). continued", "A note after."]
    assert found["dois"] == ["10.1234/abc.5"]
    assert "ann author" in model_text.keywords(["my_neuron"], "a test", [], metadata.search_words(found))
    assert metadata.of("", [None], "") == {"authors": [], "license": None, "references": [], "dois": [],
                                           "see_also": [], "keywords": []}
