"""The web pages over HTTP (a real uvicorn server; builds finished by the API tests' stand-in worker):
what each page shows, search and filters, errors as pages in the API's words, escaping of hostile
text, the security headers, sign-in, and access with reading behind a token. The same pages in a
real browser with real builds: test_web_browser.py."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
from api_support import TINY, Api, api_fixture, model_for, running_api, tag, tiny

api = api_fixture()
PAGE = {"Accept": "text/html,application/xhtml+xml"}
HOSTILE_TEXT = ('# <script>alert("x")</script> a model whose comment is markup\n'
                + TINY.replace("model tiny_neuron:", "model tiny_{t}_neuron:")
                      .replace("# resting potential", "# <img src=x onerror=alert(1)> resting"))


def publish(api: Api, t: str, text: str | None = None, **extra: object) -> int:
    toolchain = api.register_toolchain()
    files = [(f"tiny_{t}.nestml", text.encode())] if text is not None else [tiny(t)]
    build_id = api.post_build(files, toolchain=toolchain).json()["id"]
    api.succeed(build_id, toolchain, [model_for(t, **extra)], unchecked="name" in extra)
    return build_id


def publish_second_version(api: Api, t: str) -> int:
    """Version 2 of ``tiny(t)``: E_L -70 mV -> -65 mV; its build's id."""
    changed = TINY.replace("model tiny_neuron:", f"model tiny_{t}_neuron:").replace("-70 mV       #", "-65 mV       #")
    toolchain = api.register_toolchain()
    second = api.post_build([(f"tiny_{t}.nestml", changed.encode())], toolchain=toolchain).json()["id"]
    api.succeed(second, toolchain, [model_for(t, parameters=[
        {"name": "E_L", "type": "mV", "default": "-65 mV", "comment": "resting potential", "value": -65.0}])])
    return second


def page(api: Api, path: str, client: httpx.Client | None = None, **kw: object) -> httpx.Response:
    response = (client or api.client).get(path, headers={**PAGE, **kw.pop("headers", {})}, **kw)  # type: ignore[arg-type]
    assert response.headers["content-type"].startswith("text/html"), (path, response.headers["content-type"])
    return response


def text_of(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_models_page_lists_searches_and_filters(api: Api) -> None:
    t = tag()
    publish(api, t)
    listed = page(api, "/")
    assert listed.status_code == 200
    assert f"tiny_{t}_neuron_nestml" in listed.text
    assert "A small leaky integrator used by the failure tests" in text_of(listed)  # the comment's first line
    found = page(api, "/", params={"q": f"{t} e_l"})  # a parameter name, any case
    assert f"tiny_{t}_neuron_nestml" in found.text and "1 model found" in text_of(found)
    assert f"tiny_{t}" not in page(api, "/", params={"q": f"{t} no_such_parameter"}).text.split("</form>")[1]
    assert f"tiny_{t}_neuron_nestml" not in page(api, "/", params={"kind": "synapse"}).text
    assert f"tiny_{t}_neuron_nestml" in page(api, "/", params={"owner": "local", "q": t}).text
    # the same search in the JSON API, which the page renders
    body = api.client.get("/v1/models", params={"q": f"{t} E_L", "limit": 5})
    assert [m["name"] for m in body.json()] == [f"tiny_{t}_neuron_nestml"] and body.headers["x-total-count"] == "1"
    assert body.json()[0]["description"].startswith("A small leaky integrator")


def test_model_page_shows_usage_parameters_versions_and_modules(api: Api) -> None:
    t = tag()
    first = publish(api, t)
    second = publish_second_version(api, t)
    name = f"tiny_{t}_neuron_nestml"
    response = page(api, f"/models/{name}")
    assert response.status_code == 200
    shown = text_of(response)
    for expected in (f"nestml:{name}", f"nestml:{name}@2", f"nestml-registry pull {name}@2", '"E_L": -65.0',
                     "resting potential", "mV", "-65 mV", "V_m' = (E_L - V_m) / tau_m + I_e / C_m", "spikes",
                     "-70 mV → -65 mV", "first version", f"build {second}", "v2"):
        assert expected in shown, expected
    detail = api.client.get(f"/v1/models/{name}").json()
    for module in detail["versions"][0]["modules"]:
        assert module["sha256"] in shown and module["build"] == second
    assert detail["versions"][0]["changes"]["parameters"][0] == {
        "name": "E_L", "change": "changed", "before": "-70 mV", "after": "-65 mV", "unit_before": "mV",
        "unit_after": "mV"}
    older = text_of(page(api, f"/models/{name}/1"))
    assert f"nestml:{name}@1" in older and "an older version" in older and f"build {first}" in older
    # the source with line numbers
    assert re.search(r'id="L2"><td class="ln">2</td><td><pre>model tiny_', response.text)


def test_errors_are_pages_in_the_apis_words(api: Api) -> None:
    t = tag()
    publish(api, t)
    missing = page(api, f"/models/tiny_{t}_neuro")
    assert missing.status_code == 404
    api_error = api.client.get(f"/v1/models/tiny_{t}_neuro").json()["error"]
    assert api_error["message"] in text_of(missing)
    assert f'href="/models/tiny_{t}_neuron_nestml"' in missing.text  # the close match, linked
    no_version = page(api, f"/models/tiny_{t}_neuron/7")
    assert no_version.status_code == 404 and "has no version 7: it has versions 1" in text_of(no_version)
    assert page(api, "/no/such/page").status_code == 404
    assert "there is no page /no/such/page" in page(api, "/no/such/page").text
    bad = page(api, "/builds/notanumber")
    assert bad.status_code == 422 and "build_id" in text_of(bad)
    # without a browser's Accept header the same paths answer the API's JSON shape
    assert api.client.get("/no/such/page").json()["error"]["code"] == "not_found"
    assert api.client.get(f"/models/tiny_{t}_neuro").json()["error"]["code"] == "not_found"


def test_hostile_text_renders_as_text(api: Api) -> None:
    t = tag()
    text = HOSTILE_TEXT.replace("{t}", t)
    publish(api, t, text, parameters=[{"name": "E_L", "type": "mV", "default": "-70 mV", "value": -70.0,
                                        "comment": "<img src=x onerror=alert(1)> resting"}])
    for path in ("/", f"/models/tiny_{t}_neuron_nestml", f"/?q={t}"):
        response = page(api, path)
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
        assert "&lt;script&gt;alert" in response.text, path
    model = page(api, f"/models/tiny_{t}_neuron_nestml")
    assert "&lt;img src=x onerror=alert(1)&gt; resting" in model.text
    csp = model.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert model.headers["x-content-type-options"] == "nosniff"
    # a hostile file name and diagnostic on a failed build's page
    toolchain = api.register_toolchain()
    build_id = api.post_build([(f"<b>{t}<b>.nestml", TINY.replace("tiny_neuron", f"tiny_{t}x_neuron").encode())],
                              toolchain=toolchain).json()["id"]
    api.fail(build_id, toolchain, "<script>alert(2)</script>")
    failed = page(api, f"/builds/{build_id}")
    assert "<script>alert(2)" not in failed.text and "&lt;script&gt;alert(2)&lt;/script&gt;" in failed.text
    assert "<b>" not in failed.text.split("<main")[1] and f"_b_{t}_b_.nestml" in failed.text  # named safely on upload


def test_build_pages_show_status_timings_diagnostics_and_log(api: Api) -> None:
    t = tag()
    toolchain = api.register_toolchain()
    build_id = api.post_build([tiny(t)], toolchain=toolchain).json()["id"]
    queued = page(api, f"/builds/{build_id}")
    assert 'data-live="1500"' in queued.text and "queued" in text_of(queued)
    assert '<meta http-equiv="refresh"' in queued.text  # follows the build without JavaScript too
    listing = text_of(page(api, "/builds"))
    assert str(build_id) in listing and f"tiny_{t}.nestml" in listing
    api.fail(build_id, toolchain, "no free-standing units here")
    failed = page(api, f"/builds/{build_id}")
    assert 'data-live' not in failed.text
    shown = text_of(failed)
    assert "x.nestml:3:5" in shown and "no free-standing units here" in shown and "failed log" in shown
    assert page(api, "/builds", params={"status": "failed"}).text.count(f'href="/builds/{build_id}"') == 1
    assert f'href="/builds/{build_id}"' not in page(api, "/builds", params={"status": "succeeded"}).text
    # the JSON the page reads
    listed = api.client.get("/v1/builds", params={"status": "failed", "submitter": "local"}).json()
    assert build_id in [b["id"] for b in listed] and all(b["status"] == "failed" for b in listed)
    sources = api.client.get(f"/v1/builds/{build_id}/sources").json()
    assert sources[0]["name"] == f"tiny_{t}.nestml" and sources[0]["text"].startswith("# A small")


def test_diagnostic_is_shown_at_its_source_line(api: Api) -> None:
    t = tag()
    toolchain = api.register_toolchain()
    name, data = tiny(t)
    build_id = api.post_build([(name, data)], toolchain=toolchain).json()["id"]
    api.claim(toolchain, build_id)
    from api_support import WORKER_ID

    from nestml_registry.registry import queue
    from nestml_registry.registry.tables import BuildStatus
    with api.sessions.begin() as s:
        queue.finish(s, build_id, WORKER_ID, BuildStatus.FAILED, [
            {"file": name, "line": 7, "column": 9, "severity": "error", "message": "units do not match"}], "log\n",
            timings={"codegen": 1.25})
    response = page(api, f"/builds/{build_id}")
    marked = re.search(r'<tr id="[^"]*-L7" class="marked"><td class="ln">7</td><td><pre>(.*?)</pre>', response.text)
    assert marked is not None and "V_m&#39; = (E_L - V_m)" in marked.group(1)
    after = response.text[marked.end():].split("</tr>", 2)[1]
    assert "^ error: units do not match" in html.unescape(after) and " " * 8 + "^" in html.unescape(after)
    assert "NESTML code generation" in text_of(response) and "1.2 s" in text_of(response)
    assert api.client.get(f"/v1/builds/{build_id}").json()["timings"] == {"codegen": 1.25}  # what the page shows


def test_toolchains_page_lists_toolchains_and_workers(api: Api) -> None:
    toolchain = api.register_toolchain()
    from nestml_registry.registry import workers
    with api.sessions.begin() as s:
        workers.beat(s, workers.Beat("host-1:42", toolchain, "host-1", 42, 60.0))
    shown = text_of(page(api, "/toolchains"))
    assert toolchain in shown and "host-1:42" in shown and "idle" in shown
    assert "host-1:42" in text_of(page(api, "/builds"))
    assert any(w["id"] == "host-1:42" and w["alive"] for w in api.client.get("/v1/workers").json())


def test_static_files_and_docs_need_nothing_from_elsewhere(api: Api) -> None:
    for path in ("/static/style.css", "/static/app.js"):
        assert api.client.get(path).status_code == 200, path
    listed = page(api, "/").text
    assert not re.search(r'(src|href)="(https?:)?//', listed)  # nothing loaded from another host
    docs = api.client.get("/docs")
    assert "content-security-policy" not in docs.headers  # Swagger UI's own inline script
    assert "cdn" not in docs.text.lower() and not re.search(r'(src|href)="(https?:)?//', docs.text)
    for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', docs.text):
        assert api.client.get(asset).status_code == 200, asset
    assert len(re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', docs.text)) >= 2
    assert api.client.get("/static/../registry/db.py").status_code == 404


def test_upload_page_builds_and_refuses_other_sites(api: Api) -> None:
    toolchain = api.register_toolchain()
    t = tag()
    form = page(api, "/upload")
    assert 'enctype="multipart/form-data"' in form.text and "disabled" not in form.text.split('id="submit"')[1][:20]
    sent = api.client.post("/upload", files=[("files", tiny(t))], data={"toolchain": toolchain, "pairs": ""},
                           headers={**PAGE, "Origin": api.url})
    assert sent.status_code == 303, sent.text[:500]
    build_id = int(sent.headers["location"].rsplit("/", 1)[1])
    assert api.client.get(f"/v1/builds/{build_id}").json()["sources"][0]["name"] == f"tiny_{t}.nestml"
    other = api.client.post("/upload", files=[("files", tiny(tag()))], headers={**PAGE, "Origin": "http://evil.test"})
    assert other.status_code == 403 and "another site" in text_of(other)
    bad_pair = api.client.post("/upload", files=[("files", tiny(tag()))], data={"pairs": "not a pair"},
                               headers={**PAGE, "Origin": api.url})
    assert bad_pair.status_code == 422 and "NEURON:SYNAPSE" in text_of(bad_pair)


def test_reading_behind_a_token(tmp_path: Path) -> None:
    with running_api("sqlite", tmp_path, read_requires_token=True) as guarded, guarded.bare() as anonymous:
        for path in ("/", "/builds", "/toolchains", "/upload", "/models/anything"):
            response = page(guarded, path, anonymous)
            assert response.status_code == 401, path
            assert "needs a token to read" in text_of(response) and 'href="/signin?next=' in response.text
        _, reader = guarded.token("reader", "lab-reader")
        wrong = anonymous.post("/signin", data={"token": "nope", "next": "/builds"}, headers=PAGE)
        assert wrong.status_code == 401 and "unknown or revoked" in text_of(wrong)
        assert "NESTML_REGISTRY_TOKEN" not in text_of(wrong)  # a person typed into a form: no variable to set
        signed = anonymous.post("/signin", data={"token": reader, "next": "/builds"}, headers=PAGE)
        assert signed.status_code == 303 and signed.headers["location"] == "/builds"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert reader not in signed.headers["location"]
        session_cookie = anonymous.cookies.get("nestml_registry_token")
        assert session_cookie and session_cookie != reader and reader not in cookie  # a session, never the token
        inside = page(guarded, "/builds", anonymous)  # the client keeps the cookie
        assert inside.status_code == 200 and "signed in as" in text_of(inside) and "lab-reader" in text_of(inside)
        # the cookie is for pages only: the JSON API still wants the header
        assert anonymous.get("/v1/models").status_code == 401
        upload = page(guarded, "/upload", anonymous)
        assert "needs a token with the publisher role" in text_of(upload)
        refused = anonymous.post("/upload", files=[("files", tiny(tag()))], headers=PAGE)
        assert refused.status_code == 403 and "publisher" in text_of(refused)
        assert anonymous.post("/signin", data={"token": reader, "next": "//evil.test/"},
                                   headers=PAGE).headers["location"] == "/"
        out = anonymous.post("/signout", headers=PAGE)
        assert out.status_code == 303
        anonymous.cookies.clear()
        assert page(guarded, "/builds", anonymous).status_code == 401
        with guarded.bare() as stale:  # the session ends at sign-out: its cookie, kept, opens nothing
            stale.cookies.set("nestml_registry_token", session_cookie)
            assert page(guarded, "/builds", stale).status_code == 401
        _, admin = guarded.token("admin")
        names = [t["name"] for t in guarded.client.get("/v1/tokens", headers={"Authorization": f"Bearer {admin}"}
                                                       ).json()]
        assert names.count("lab-reader") == 1  # a page session is no token anyone was given


def test_paired_models_and_pinned_references(api: Api) -> None:
    t = tag()
    pair = f"tiny_{t}_neuron_nestml__with_stdp_{t}_synapse_nestml"
    publish(api, t, name=pair, nestml_name=f"tiny_{t}_neuron")
    shown = text_of(page(api, f"/models/{pair}"))
    assert f"paired with stdp_{t}_synapse_nestml" in shown
    pinned = api.client.get(f"/models/{pair}@1", headers=PAGE)  # as SONATA files and the CLI write it
    assert pinned.status_code == 307 and pinned.headers["location"] == f"/models/{pair}/1"
    assert page(api, f"/models/{pair}@x").status_code == 422


def test_a_yanked_version_is_marked_with_its_reason(api: Api) -> None:
    t = tag()
    publish(api, t)
    name = f"tiny_{t}_neuron_nestml"
    yanked = api.client.post(f"/v1/models/{name}@1/yank", json={"reason": "<b>wrong</b> reset"})
    assert yanked.status_code == 200, yanked.text
    response = page(api, f"/models/{name}")
    assert response.status_code == 200
    shown = text_of(response)
    assert "Yanked by local: <b>wrong</b> reset." in shown and "lock files still resolve it" in shown
    assert "<b>wrong</b>" not in response.text  # the reason is text, never markup


def test_two_versions_side_by_side(api: Api) -> None:
    """The compare page renders the API's diff document: parameter changes, the source diff, and both
    versions' characterisations; the model page links to it from each version's changes."""
    t = tag()
    publish(api, t)
    publish_second_version(api, t)
    name = f"tiny_{t}_neuron_nestml"
    assert f'href="/models/{name}/compare?from=1&amp;to=2"' in page(api, f"/models/{name}").text
    response = page(api, f"/models/{name}/compare", params={"from": 1, "to": 2})
    assert response.status_code == 200, response.text[:500]
    shown = text_of(response)
    diff = api.client.get(f"/v1/models/{name}/diff", params={"from": 1, "to": 2}).json()
    assert diff["parameters"][0]["name"] == "E_L" and "E_L changed -70 mV -65 mV" in shown, shown
    assert '<span class="added">+' in response.text and '<span class="removed">-' in response.text
    assert "Characterisation" in shown and "v1 v2" in shown
    error = page(api, f"/models/{name}/compare", params={"from": 1, "to": 9})
    assert error.status_code == 404 and "version" in text_of(error)
    assert page(api, f"/models/{name}/compare", params={"from": 1}).status_code == 422


DOCUMENTED = """\
# tiny_{t}_neuron - a leaky integrator, documented as NESTML's models are
# ####################################################################
#
# .. math::
#
#    \\frac{{dV_m}}{{dt}} = \\frac{{E_L - V_m}}{{\\tau_m}}
#
# See `the NEST docs <https://nest-simulator.readthedocs.io>`_, not `this <javascript:alert(1)>`_.
#
# .. raw:: html
#
#    <script>document.title = 'pwned'</script>
#
# <img src=x onerror=alert(1)>
"""


def test_the_leading_comment_is_documentation_with_mathematics(api: Api) -> None:
    """reStructuredText as NESTML's shipped models write it: headings, math as MathML, safe links only; no
    raw HTML, script, or event handler of the publisher's reaches the page."""
    t = tag()
    text = DOCUMENTED.format(t=t) + TINY.replace("model tiny_neuron:", f"model tiny_{t}_neuron:")
    publish(api, t, text)
    response = page(api, f"/models/tiny_{t}_neuron_nestml")
    assert response.status_code == 200
    doc = response.text.split('<div class="doc" id="description">')[1].split("</div>\n<details")[0]
    assert "<math" in doc and "<mfrac>" in doc and "<h3>" in doc, doc[:500]
    assert 'href="https://nest-simulator.readthedocs.io"' in doc
    assert "javascript:" not in doc and "<script>document" not in response.text  # (the as-written text is escaped)
    assert "<img" not in doc and "&lt;img src=x onerror=alert(1)&gt;" in doc  # text, not an element
    assert "The comment as written" in response.text
