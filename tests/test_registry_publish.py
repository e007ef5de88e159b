"""Publishing models as versions (concurrently too), name ownership, and resolving references."""

from __future__ import annotations

import pytest
from registry_fixtures import (
    OTHER_TOOLCHAIN,
    TOOLCHAIN,
    Children,
    child_publish,
    children_fixture,
    database_fixtures,
    key_of,
    model_dict,
    neuron_text,
    published_build,
    request_doc,
    source,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry import listing, owners, publishing, queue, records, resolving
from nestml_registry.registry.errors import InvalidInput, NameOwned, NotFound, ResolveError
from nestml_registry.registry.tables import AuditEvent, ModelModule, ModelName, ModelVersion

empty_db_url, db_url, engine, sessions = database_fixtures()
children = children_fixture(10)

IZH = "custom_izh_neuron_nestml"


def izh_files(variant: int = 0) -> list[tuple[str, str, str]]:
    return [source("izh.nestml", neuron_text(variant=variant))]


def test_publish_creates_versions_and_reuses_them_for_the_same_content(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        build, published = published_build(s, files=izh_files(), models=[model_dict()])
        assert published == [publishing.Published(IZH, "neuron", 1, True)]
        name = s.get(ModelName, IZH)
        assert name is not None and name.owner == "alice"
        version = s.scalars(select(ModelVersion)).one()
        assert version.source_sha256 == izh_files()[0][1] and version.nestml_name == "custom_izh_neuron"
        assert version.parameters == model_dict()["parameters"]
        assert build.module is not None and build.module.registers == [IZH]
        # the same source in another module (another build key): same content, same version, first module kept
        _, again = published_build(s, files=izh_files(), models=[model_dict()], module="lab_module")
        assert again == [publishing.Published(IZH, "neuron", 1, False)]
        assert resolving.resolve(s, IZH, TOOLCHAIN).module_name == "custom_izh_neuron_nestml_module"
        # the same content built for another toolchain: same version, a second module
        published_build(s, files=izh_files(), models=[model_dict()], toolchain=OTHER_TOOLCHAIN)
        assert s.scalar(select(func.count()).select_from(ModelModule)) == 2
        # new content: the next version
        _, newer = published_build(s, files=izh_files(1), models=[model_dict()])
        assert newer == [publishing.Published(IZH, "neuron", 2, True)]
        # another suffix changes the behaviour's inputs: a new version too
        _, other_suffix = published_build(s, files=izh_files(1), models=[model_dict()], suffix="_v")
        assert other_suffix[0].version == 3
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "publish")) == 5


@pytest.mark.slow
def test_ten_concurrent_publishers_get_versions_one_to_ten(db_url: str, sessions: sessionmaker[Session],
                                                           children: Children) -> None:
    versions = children.run(child_publish, [(db_url, i) for i in range(10)])
    assert sorted(versions) == list(range(1, 11))
    with sessions() as s:
        rows = s.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        assert [v.version for v in rows] == list(range(1, 11))
        assert len({v.content_digest for v in rows}) == 10
        assert resolving.resolve(s, "custom_izh_neuron", TOOLCHAIN).version == 10
    with sessions.begin() as s:  # publishing one of those contents again is not a new version
        _, again = published_build(s, files=izh_files(4), models=[model_dict()], module="again_module")
        assert again[0].created is False and 1 <= again[0].version <= 10
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 10


def test_a_bare_name_cannot_shadow_another_owners_suffixed_name(sessions: sessionmaker[Session]) -> None:
    """X, X_nestml and X_nestml__with_S_nestml are one family: its owner is the only publisher of any of them."""
    with sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict()], actor="alice")
    with pytest.raises(NameOwned, match=r"published as 'custom_izh_neuron_nestml', which belongs to 'alice'") as info, \
            sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict("custom_izh_neuron")], actor="mallory", suffix="")
    assert info.value.details["family"] == "custom_izh_neuron"
    with pytest.raises(NameOwned), sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict("custom_izh_neuron_x")], actor="mallory",
                        suffix="_x")
    with sessions.begin() as s:
        assert s.get(ModelName, "custom_izh_neuron") is None
        published_build(s, files=izh_files(), models=[model_dict("custom_izh_neuron")], actor="alice", suffix="")
        assert s.get(ModelName, "custom_izh_neuron").family == "custom_izh_neuron"


def test_a_name_belongs_to_its_first_publisher(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict()], actor="alice")
    with pytest.raises(NameOwned, match=r"belongs to 'alice'.*rename the model") as info, sessions.begin() as s:
        published_build(s, files=izh_files(1), models=[model_dict()], actor="bob")
    assert info.value.details == {"model": IZH, "family": "custom_izh_neuron", "owner": "alice", "actor": "bob"}
    with pytest.raises(NameOwned), sessions.begin() as s:
        published_build(s, files=izh_files(1), models=[model_dict()], actor=None)
    with sessions.begin() as s:  # the owner and an admin may publish new versions
        assert published_build(s, files=izh_files(1), models=[model_dict()], actor="alice")[1][0].version == 2
        assert published_build(s, files=izh_files(2), models=[model_dict()], actor="root",
                               admin=True)[1][0].version == 3
        assert s.get(ModelName, IZH).owner == "alice"
        # a name published anonymously belongs to the principal 'local', not to everyone
        anon = [source("anon.nestml", neuron_text("anon_neuron"))]
        published_build(s, files=anon, models=[model_dict("anon_neuron_nestml", "anon.nestml")], actor=None)
    anon2 = [source("anon.nestml", neuron_text("anon_neuron", 1))]
    with pytest.raises(NameOwned, match="belongs to 'local'"), sessions.begin() as s:
        published_build(s, files=anon2, models=[model_dict("anon_neuron_nestml", "anon.nestml")], actor="bob")
    with sessions.begin() as s:
        _, p = published_build(s, files=anon2, models=[model_dict("anon_neuron_nestml", "anon.nestml")], actor=None)
        assert p[0].version == 2 and s.get(ModelName, "anon_neuron_nestml").owner == "local"
        previous, now = owners.set_owner(s, "anon_neuron_nestml", "bob", "admin-alice")
        assert (previous, now) == ("local", "bob")
    with sessions.begin() as s:
        anon3 = [source("anon.nestml", neuron_text("anon_neuron", 2))]
        _, p = published_build(s, files=anon3, models=[model_dict("anon_neuron_nestml", "anon.nestml")], actor="bob")
        assert p[0].version == 3
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "owner")).one()
        assert (event.actor, event.subject, event.details) == ("admin-alice", "anon_neuron_nestml",
                                                               {"from": "local", "to": "bob"})
    with pytest.raises(NotFound, match="no model name 'nope_nestml'"), sessions.begin() as s:
        owners.set_owner(s, "nope_nestml", "bob", "admin")


def test_publish_refuses_bad_models(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput, match=r"kind"), sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict(kind="astrocyte")])


def test_paired_models_depend_on_their_partner_source(sessions: sessionmaker[Session]) -> None:
    syn = "model stdp_synapse:\n    state:\n        w real = 1\n"
    pair = [{"neuron": "iaf_neuron", "synapse": "stdp_synapse"}]

    def build(syn_text: str) -> list[publishing.Published]:
        files = [source("iaf.nestml", neuron_text("iaf_neuron")), source("stdp.nestml", syn_text),
                 source("izh.nestml", neuron_text())]
        models = [model_dict("iaf_neuron_nestml", "iaf.nestml"),
                  model_dict("iaf_neuron_nestml__with_stdp_synapse_nestml", "iaf.nestml"),
                  model_dict("stdp_synapse_nestml__with_iaf_neuron_nestml", "stdp.nestml", kind="synapse",
                             variants=["stdp_synapse_nestml__with_iaf_neuron_nestml_hpc"]),
                  model_dict()]
        with sessions.begin() as s:
            return published_build(s, files=files, models=models, pairs=pair, module="pair_module")[1]

    first = {p.name: p.version for p in build(syn)}
    assert set(first.values()) == {1}
    second = {p.name: p.version for p in build(syn.replace("w real = 1", "w real = 2"))}
    assert second["iaf_neuron_nestml__with_stdp_synapse_nestml"] == 2  # the neuron's partner changed
    assert second["stdp_synapse_nestml__with_iaf_neuron_nestml"] == 2
    assert second[IZH] == 1  # not part of the pair: same behaviour, same version
    assert second["iaf_neuron_nestml"] == 1, "the plain neuron a pair's module registers is the neuron alone"
    with sessions.begin() as s:
        alone = published_build(s, files=[source("iaf.nestml", neuron_text("iaf_neuron"))],
                                models=[model_dict("iaf_neuron_nestml", "iaf.nestml")], module="iaf_module")[1]
    assert [(p.name, p.version, p.created) for p in alone] == [("iaf_neuron_nestml", 1, False)]
    with sessions() as s:
        registers = records.get_module(s, resolving.resolve(s, IZH, TOOLCHAIN).module_sha256).registers
        assert "stdp_synapse_nestml__with_iaf_neuron_nestml_hpc" in registers


@pytest.mark.parametrize(("text", "expected"), [
    ("custom_izh_neuron", ("custom_izh_neuron", None)),
    ("custom_izh_neuron_nestml", ("custom_izh_neuron_nestml", None)),
    ("custom_izh_neuron@3", ("custom_izh_neuron", 3)),
    (" nestml:izh_nestml@12 ", ("izh_nestml", 12))])
def test_parse_reference(text: str, expected: tuple[str, int | None]) -> None:
    assert resolving.parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "izh@", "izh@0", "izh@-1", "izh@v2", "nest:izh", "9izh", "a/b", "izh@1@2"])
def test_parse_reference_refuses_bad_syntax(text: str) -> None:
    with pytest.raises(ResolveError, match=r"invalid model reference.*NAME@VERSION"):
        resolving.parse_reference(text)


def test_resolve(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        first, _ = published_build(s, files=izh_files(0), models=[model_dict()])
        second, _ = published_build(s, files=izh_files(1), models=[model_dict()])
    with sessions() as s:
        for ref in ("custom_izh_neuron", IZH, f"nestml:{IZH}", "custom_izh_neuron@2"):
            res = resolving.resolve(s, ref, TOOLCHAIN)
            assert (res.model, res.version, res.module_sha256, res.kind) == (IZH, 2, second.module.sha256, "neuron")
            assert res.location == second.module.location and res.toolchain == TOOLCHAIN
        old = resolving.resolve(s, "custom_izh_neuron@1", TOOLCHAIN)
        assert (old.version, old.module_sha256, old.module_name) == (1, first.module.sha256, first.module.name)


def test_the_quick_resolution_agrees_with_the_full_one(sessions: sessionmaker[Session],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A name as given wins over its _nestml form, also when only the _nestml form has a module here."""
    with sessions.begin() as s:
        published_build(s, files=izh_files(0), models=[model_dict()])
        published_build(s, files=izh_files(1), models=[model_dict()])
        published_build(s, files=izh_files(2), models=[model_dict("custom_izh_neuron")], suffix="",
                        toolchain=OTHER_TOOLCHAIN, module="custom_izh_neuron_module")

    def outcome(ref: str, toolchain: str) -> object:
        with sessions() as s:
            try:
                return resolving.resolve(s, ref, toolchain)
            except ResolveError as exc:
                return exc.message

    refs = ["custom_izh_neuron", IZH, "custom_izh_neuron@1", f"{IZH}@2", f"{IZH}@9", "zebra"]
    quick = {(r, t): outcome(r, t) for r in refs for t in (TOOLCHAIN, OTHER_TOOLCHAIN)}
    monkeypatch.setattr(resolving, "_resolve_quickly", lambda *args: None)
    assert quick == {(r, t): outcome(r, t) for r in refs for t in (TOOLCHAIN, OTHER_TOOLCHAIN)}
    assert isinstance(quick[("custom_izh_neuron", TOOLCHAIN)], str)  # the bare name has no module there


def test_a_half_of_a_pair_names_the_paired_models(sessions: sessionmaker[Session]) -> None:
    pair = "iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"
    with sessions.begin() as s:
        published_build(s, files=izh_files(0), models=[
            model_dict(pair), model_dict("stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml", kind="synapse"),
            model_dict("tsodyks_synapse_nestml", kind="synapse")])
    with sessions() as s:
        for plain in ("stdp_synapse", "stdp_synapse_nestml", "iaf_psc_exp_neuron"):
            with pytest.raises(ResolveError, match=r"published paired, as .*__with_") as info:
                resolving.resolve(s, plain, TOOLCHAIN)
            assert "tsodyks" not in str(info.value), plain
            assert any("__with_" in n for n in info.value.details["close_names"])


def test_resolve_errors_say_what_exists(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        published_build(s, files=izh_files(0), models=[model_dict()])
        published_build(s, files=izh_files(1), models=[model_dict()])
    with sessions() as s:
        with pytest.raises(ResolveError, match=r"no model 'custom_izh_neuronn'.*did you mean custom_izh_neuron_nestml"
                           ) as info:
            resolving.resolve(s, "custom_izh_neuronn", TOOLCHAIN)
        assert info.value.details["close_names"] == [IZH]
        with pytest.raises(ResolveError, match=r"no model 'zebra'.*push its .nestml source") as info:
            resolving.resolve(s, "zebra", TOOLCHAIN)
        assert info.value.details["close_names"] == []
        # a whole NESTML model name that is not registered: push it, not "did you mean" an unrelated model
        with pytest.raises(ResolveError, match=r"no model 'custom_adex_neuron'.*push its .nestml source first: "
                           r"nestml-registry push FILE.nestml \(the file with 'model custom_adex_neuron:'\)"):
            resolving.resolve(s, "custom_adex_neuron", TOOLCHAIN)
        with pytest.raises(ResolveError, match=r"has no version 7: it has versions 1, 2") as info:
            resolving.resolve(s, "custom_izh_neuron@7", TOOLCHAIN)
        assert info.value.details["versions"] == [1, 2]
        with pytest.raises(ResolveError, match=f"no module for toolchain {OTHER_TOOLCHAIN}; it is built for "
                           f"{TOOLCHAIN}") as info:
            resolving.resolve(s, IZH, OTHER_TOOLCHAIN)
        assert info.value.details["toolchains"] == [TOOLCHAIN] and "build" not in info.value.details


def test_resolve_reports_builds_in_progress_and_failed(sessions: sessionmaker[Session]) -> None:
    files = izh_files()
    with sessions.begin() as s:
        published_build(s, files=files, models=[model_dict()])
        # the same source queued for another toolchain
        other, _ = queue.enqueue(s, key_of("other"), OTHER_TOOLCHAIN, request_doc(), files)
        # a model never built yet: its first build is running
        new_files = [source("new.nestml", neuron_text("brand_new_neuron"))]
        new, _ = queue.enqueue(s, key_of("new"), TOOLCHAIN, request_doc(), new_files)
        assert queue.claim(s, "w", [TOOLCHAIN], 60).id == new.id
    with sessions() as s:
        with pytest.raises(ResolveError, match=f"build {other.id} is queued; wait") as info:
            resolving.resolve(s, IZH, OTHER_TOOLCHAIN)
        assert info.value.details["build"]["status"] == "queued"
        with pytest.raises(ResolveError, match=f"not in the registry yet: its build {new.id} is running") as info:
            resolving.resolve(s, "brand_new_neuron", TOOLCHAIN)
        assert info.value.details["build"]["id"] == new.id
    with sessions.begin() as s:
        assert queue.claim(s, "w2", [OTHER_TOOLCHAIN], 60).id == other.id
        diags = [{"file": "izh.nestml", "line": 8, "column": 29, "severity": "error",
                  "message": "No free-standing physical units allowed (mV)"}]
        assert queue.finish(s, other.id, "w2", "failed", diags, "log")
        assert queue.finish(s, new.id, "w", "failed", [], "log", error="NESTML's process died")
    with sessions() as s:
        with pytest.raises(ResolveError, match=r"failed: izh.nestml:8:29: error: No free-standing") as info:
            resolving.resolve(s, IZH, OTHER_TOOLCHAIN)
        assert info.value.details["build"]["error"].startswith("izh.nestml:8:29")
        assert info.value.details["toolchains"] == [TOOLCHAIN]
        with pytest.raises(ResolveError, match=r"its build .* failed: NESTML's process died"):
            resolving.resolve(s, "brand_new_neuron_nestml", TOOLCHAIN)


def test_resolve_many(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        published_build(s, files=izh_files(0), models=[model_dict()])
        published_build(s, files=izh_files(1), models=[model_dict()])
        aeif = [source("aeif.nestml", neuron_text("aeif_neuron"))]
        published_build(s, files=aeif, models=[model_dict("aeif_neuron_nestml", "aeif.nestml")], module="aeif_module")
    with sessions() as s:
        got = resolving.resolve_many(s, ["custom_izh_neuron", "aeif_neuron", "custom_izh_neuron_nestml@2"], TOOLCHAIN)
        assert [(r.model, r.version) for r in got] == [(IZH, 2), ("aeif_neuron_nestml", 1), (IZH, 2)]
        with pytest.raises(ResolveError, match=r"two versions of a model: custom_izh_neuron_nestml as version 1 "
                           r"\(custom_izh_neuron@1\) and version 2 \(custom_izh_neuron\).*one version") as info:
            resolving.resolve_many(s, ["custom_izh_neuron@1", "aeif_neuron", "custom_izh_neuron"], TOOLCHAIN)
        assert info.value.details["conflicts"] == [{"model": IZH, "versions": {"1": ["custom_izh_neuron@1"],
                                                                               "2": ["custom_izh_neuron"]}}]
        with pytest.raises(ResolveError, match=r"2 model references do not resolve") as info:
            resolving.resolve_many(s, ["nope_one", "aeif_neuron", "nope_two"], TOOLCHAIN)
        assert len(info.value.details["errors"]) == 2


def test_resolve_many_refuses_modules_that_register_the_same_name(sessions: sessionmaker[Session]) -> None:
    aeif = [source("aeif.nestml", neuron_text("aeif_neuron"))]
    with sessions.begin() as s:
        published_build(s, files=izh_files(), models=[model_dict()])  # izh alone
        # izh and aeif in one module: izh's version already has a module, aeif's is this one
        published_build(s, files=izh_files() + aeif, models=[model_dict(), model_dict("aeif_neuron_nestml",
                                                                                       "aeif.nestml")],
                        module="both_module")
    with sessions() as s:
        with pytest.raises(ResolveError, match=r"register the same names: custom_izh_neuron_nestml \(in "):
            resolving.resolve_many(s, ["custom_izh_neuron", "aeif_neuron"], TOOLCHAIN)
        assert len(resolving.resolve_many(s, ["aeif_neuron"], TOOLCHAIN)) == 1


def test_list_models_and_model_detail(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        published_build(s, files=izh_files(0), models=[model_dict()])
    with sessions.begin() as s:
        aeif = [source("aeif.nestml", neuron_text("aeif_neuron"))]
        published_build(s, files=aeif, models=[model_dict("aeif_neuron_nestml", "aeif.nestml")], module="aeif_module")
    with sessions.begin() as s:
        published_build(s, files=izh_files(1), models=[model_dict()])
    with sessions() as s:
        listed, _ = listing.list_models(s)
        assert [(m["name"], m["version"], m["versions"]) for m in listed] == [(IZH, 2, 2), ("aeif_neuron_nestml", 1, 1)]
        assert listed[0]["kind"] == "neuron" and listed[0]["owner"] == "alice"
        assert listed[0]["toolchains"] == [TOOLCHAIN]
        detail = listing.model_detail(s, "custom_izh_neuron")
        assert detail["name"] == IZH and detail["version"] == 2
        assert [v["version"] for v in detail["versions"]] == [2, 1]
        newest = detail["versions"][0]
        assert newest["source"] == {"name": "izh.nestml", "sha256": izh_files(1)[0][1], "text": izh_files(1)[0][2]}
        assert newest["parameters"][0]["name"] == "a" and newest["state"][0]["name"] == "V_m"
        assert newest["input_ports"] == [{"name": "spikes", "type": "spike"}]
        assert newest["modules"][0]["toolchain"] == TOOLCHAIN
        with pytest.raises(NotFound, match=r"did you mean"):
            listing.model_detail(s, "custom_izh")


def test_a_repair_rebuild_with_other_bytes_is_reported_never_recorded_as_a_repair(
        sessions: sessionmaker[Session]) -> None:
    from nestml_registry.registry import queue, results
    from nestml_registry.registry.errors import NotReproducible
    from nestml_registry.registry.store import StoredArtifact

    with sessions.begin() as s:
        build, _ = published_build(s, files=izh_files(), models=[model_dict()], actor=None)  # its submitter's
        build_id, sha, module = build.id, build.module.sha256, build.request["module"]
    for rebuilt, ok in (("f" * 64, False), (sha, True)):
        with sessions.begin() as s:
            assert queue.requeue(s, build_id, "queued again: its module was corrupt in the artifact store")
            assert queue.claim(s, "w", [TOOLCHAIN], 60).id == build_id
        stored = StoredArtifact(rebuilt, 1000, f"{rebuilt[:2]}/{rebuilt}/{module}.so")
        if ok:
            with sessions.begin() as s:
                assert results.record_success(s, build_id, "w", stored, module, [], None, None, [model_dict()],
                                              characterise=False)
        else:
            with pytest.raises(NotReproducible, match="gave other bytes") as info, sessions.begin() as s:
                results.record_success(s, build_id, "w", stored, module, [], None, None, [model_dict()],
                                       characterise=False)
            assert info.value.details == {"registered": sha, "rebuilt": rebuilt}
            with sessions.begin() as s:
                assert results.record_failure(s, build_id, "w", [{"severity": "error", "message": str(info.value)}],
                                              None)
