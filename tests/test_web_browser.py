"""The web pages in a real browser: Debian's headless Chromium (driven by selenium through Debian's
chromedriver) against a real ``nestml-registry serve`` on loopback with real builds. Screenshots of the
main pages are kept in the test's temporary folder (``screenshots/``), not committed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import start_chromium
from server_fixtures import (
    BROKEN_TEXT,
    PUBLISHED_FILE,
    PUBLISHED_MODEL,
    PUBLISHED_TEXT,
    Server,
    server_fixture,
    start_server,
)

pytestmark = pytest.mark.slow
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

server = server_fixture("web")
NAME = PUBLISHED_MODEL + "_nestml"
# a model whose comments and a parameter's description are markup that would run if it were not escaped
HOSTILE_MODEL = "tiny_web_hostile_neuron"
HOSTILE_TEXT = ("# <script>document.title = 'pwned'</script><img src=x onerror=\"document.title='pwned'\">\n"
                + PUBLISHED_TEXT.replace(f"model {PUBLISHED_MODEL}:", f"model {HOSTILE_MODEL}:")
                .replace("# membrane time constant", "# <b onmouseover=alert(1)>membrane</b> time constant"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def pushed(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The model pushed with the CLI and built for real."""
    sources = tmp_path_factory.mktemp("web-sources")
    (sources / PUBLISHED_FILE).write_text(PUBLISHED_TEXT)
    proc = server.cli("push", str(sources / PUBLISHED_FILE), "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(driver: WebDriver, condition, timeout: float = 30):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException,
                                                                                NoSuchElementException]
                         ).until(lambda d: condition(d))


def text(driver: WebDriver, css: str = "main") -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def no_alert(driver: WebDriver) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_models_page_and_search_as_you_type(server: Server, pushed: dict, browser: WebDriver,
                                            screenshots: Path) -> None:
    browser.get(server.url + "/")
    assert NAME in text(browser, "#models")
    assert "A small leaky integrator" in text(browser, "#models")  # the model's comment, first line
    browser.save_screenshot(str(screenshots / "models.png"))
    box = browser.find_element(By.ID, "q")
    box.send_keys("tau_m")  # a parameter name: the results change as one types, without submitting
    wait_for(browser, lambda d: "q=tau_m" in d.current_url)
    assert NAME in text(browser, "#results") and "found" in text(browser, "#count")
    box.send_keys("_no_such_thing")
    wait_for(browser, lambda d: "No model matches" in text(d, "#results"))
    browser.get(server.url + "/?q=tau_m&kind=synapse")  # without JavaScript: the form's own query
    assert "No model matches" in text(browser, "#results")


def test_model_page(server: Server, pushed: dict, browser: WebDriver, screenshots: Path) -> None:
    browser.get(f"{server.url}/models/{NAME}")
    browser.save_screenshot(str(screenshots / "model.png"))
    parameters = text(browser, "#parameters")
    for expected in ("tau_m", "ms", "10 ms", "membrane time constant", "E_L", "mV", "-70 mV", "resting potential"):
        assert expected in parameters, expected
    assert "V_m" in text(browser, "#state") and "spikes" in text(browser, "#ports")
    math = browser.find_element(By.CSS_SELECTOR, "#equations-math math")  # drawn by the browser as MathML
    assert math.size["height"] > 0 and "V" in math.text and "τ" in math.text
    written = browser.find_element(By.CSS_SELECTOR, "#equations").get_attribute("textContent")
    assert "V_m' = (E_L - V_m) / tau_m" in written
    assert "v1" in text(browser, "#versions") and "first version" in text(browser, "#versions")
    assert text(browser, "#use-template") == f"nestml:{NAME}"
    assert text(browser, "#use-pinned") == f"nestml:{NAME}@1"
    assert text(browser, "#use-pull") == f"nestml-registry pull {NAME}@1"
    params = json.loads(text(browser, "#use-params"))
    assert params["tau_m"] == 10.0 and params["V_th"] == -55.0
    sha = pushed["module"]["sha256"]
    assert sha in text(browser, "#modules")
    # copy buttons are shown by the script and say when they copied
    button = browser.find_element(By.CSS_SELECTOR, 'button[data-copy="use-pinned"]')
    assert button.is_displayed()
    button.click()
    wait_for(browser, lambda d: button.text in ("Copied", "Copy"))
    download = browser.find_element(By.CSS_SELECTOR, "#modules a[download]").get_attribute("href")
    assert download is not None
    got = httpx.get(download, timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    assert browser.find_element(By.ID, "L2").text.startswith("2")


def sign_in_as_the_servers_user(server: Server, browser: WebDriver) -> None:
    """Sign the browser in with the local token `serve` wrote for its user (who submits with the CLI)."""
    browser.get(server.url + "/signin")
    browser.find_element(By.ID, "token").send_keys((server.home / "local-token").read_text().strip())
    browser.find_element(By.ID, "signin").click()
    wait_for(browser, lambda d: "/signin" not in d.current_url)


def test_failed_build_page_shows_the_diagnostic_at_its_line(server: Server, browser: WebDriver,
                                                             tmp_path: Path, screenshots: Path) -> None:
    sign_in_as_the_servers_user(server, browser)  # a failed build's sources are its submitter's to read
    broken = tmp_path / "tiny_broken.nestml"
    broken.write_text(BROKEN_TEXT)
    proc = server.cli("push", str(broken), "--wait", "--json")
    assert proc.returncode == 1, proc.stderr
    build_id = json.loads(proc.stdout)["id"]
    browser.get(f"{server.url}/builds/{build_id}")
    browser.save_screenshot(str(screenshots / "build-failed.png"))
    assert browser.find_element(By.ID, "build-status").text == "failed"
    marked = browser.find_elements(By.CSS_SELECTOR, "table.source tr.marked")
    assert marked, text(browser)
    line = marked[0].find_element(By.CSS_SELECTOR, "td.ln").text
    assert line == "9" and BROKEN_TEXT.splitlines()[8].strip() in marked[0].text  # where NESTML reports it
    follower = marked[0].find_element(By.XPATH, "following-sibling::tr[1]")
    assert "diagnostic" in (follower.get_attribute("class") or "") and "error" in follower.text
    assert "tiny_broken.nestml:9" in text(browser, "#diagnostics")


def test_upload_builds_a_model_and_hostile_text_runs_nothing(server: Server, browser: WebDriver, tmp_path: Path,
                                                             screenshots: Path) -> None:
    source = tmp_path / "tiny_web_hostile.nestml"
    source.write_text(HOSTILE_TEXT)
    sign_in_as_the_servers_user(server, browser)  # uploading needs a publisher's token
    browser.get(server.url + "/upload")
    browser.save_screenshot(str(screenshots / "upload.png"))
    browser.find_element(By.ID, "files").send_keys(str(source))
    browser.find_element(By.ID, "module").send_keys("tiny_web_hostile_module")
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: "/builds/" in d.current_url)
    # the page follows the build by itself until it has finished (and then shows what it published)
    wait_for(browser, lambda d: d.find_element(By.ID, "build-status").text in ("succeeded", "failed"), timeout=600)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#published a"), timeout=30)
    browser.save_screenshot(str(screenshots / "build-succeeded.png"))
    assert browser.find_element(By.ID, "build-status").text == "succeeded", text(browser)
    browser.find_element(By.CSS_SELECTOR, "#published a").click()
    wait_for(browser, lambda d: f"/models/{HOSTILE_MODEL}_nestml" in d.current_url)
    browser.save_screenshot(str(screenshots / "model-hostile.png"))
    assert "<script>document.title = 'pwned'</script>" in text(browser, "#description")
    assert "<b onmouseover=alert(1)>membrane</b> time constant" in text(browser, "#parameters")
    assert browser.title != "pwned" and no_alert(browser)
    # nothing of the publisher's text became an element; the one image is the registry's own plot
    assert browser.execute_script("return document.querySelectorAll("
                                  "'main script, main img:not(#characterisation-plots), main b').length") == 0
    plots = browser.find_elements(By.CSS_SELECTOR, "main img")
    assert all((p.get_attribute("src") or "").endswith("/characterisation.svg") for p in plots)
    for path in ("/", f"/?q={HOSTILE_MODEL}", "/builds"):
        browser.get(server.url + path)
        assert browser.title != "pwned" and no_alert(browser), path
    assert HOSTILE_MODEL in text(browser, "#builds") or "tiny_web_hostile" in text(browser, "#builds")


def test_pages_behind_a_reader_token(tmp_path: Path, registry_home: Path, browser: WebDriver,
                                     screenshots: Path) -> None:
    guarded = start_server(tmp_path / "guarded", registry_home, workers=0, read_requires_token="1",
                           allow_anonymous_publish="0")
    try:
        proc = guarded.cli("token", "create", "--name", "lab-reader", "--role", "reader", "--json")
        assert proc.returncode == 0, proc.stderr
        token = json.loads(proc.stdout)["token"]
        for path in ("/", "/builds", "/toolchains", "/models/anything"):
            assert httpx.get(guarded.url + path, headers={"Accept": "text/html"}, timeout=30).status_code == 401
        browser.get(guarded.url + "/builds")
        assert "needs a token to read" in text(browser)
        browser.save_screenshot(str(screenshots / "unauthorized.png"))
        browser.find_element(By.LINK_TEXT, "Sign in with a token").click()
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "signin").click()
        wait_for(browser, lambda d: d.current_url.endswith("/builds"))
        # (the page may still be replacing itself: read the header once it has settled)
        wait_for(browser, lambda d: "signed in as lab-reader" in text(d, "header"))
        assert token not in browser.current_url
        browser.find_element(By.CSS_SELECTOR, "header form button").click()  # sign out
        browser.get(guarded.url + "/")
        assert "needs a token to read" in text(browser)
    finally:
        guarded.stop()


def test_api_docs_work_offline(server: Server, browser: WebDriver, screenshots: Path) -> None:
    """Swagger UI's files come from the registry (this machine reaches no CDN): the page renders."""
    browser.get(server.url + "/docs")
    wait_for(browser, lambda d: "nestml-registry" in d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text)
    assert browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # the operations are listed
    browser.save_screenshot(str(screenshots / "docs.png"))


EVIL_PAGE = """<!doctype html><html><head><title>loading</title></head><body><script>
const text = "model evil_{tag}_neuron:\\n    state:\\n        V_m mV = -70 mV\\n";
const tries = [["{registry}/v1/builds", "files"], ["{registry}/upload", "files"]];
Promise.all(tries.map(([url, field]) => {{
  const form = new FormData();
  form.append(field, new Blob([text]), "evil_{tag}.nestml");
  return fetch(url, {{method: "POST", body: form, credentials: "include"}})
    .then(r => "sent " + r.status, e => "blocked");
}})).then(results => {{ document.title = "done " + results.join(","); }});
</script></body></html>"""


def test_a_page_of_another_origin_cannot_publish(server: Server, browser: WebDriver, tmp_path: Path) -> None:
    """A page served from another origin of this machine (another port: same site, so the browser even sends
    the signed-in session's cookie) posts builds to the API and to the upload form: both refused, none queued."""
    import functools
    import http.server
    import threading
    import uuid

    sign_in_as_the_servers_user(server, browser)
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "evil.html").write_text(EVIL_PAGE.format(tag=tag, registry=server.url))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    before = httpx.get(f"{server.url}/v1/builds", params={"limit": 1}).json()
    try:
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        wait_for(browser, lambda d: d.title.startswith("done"), timeout=60)
    finally:
        evil.shutdown()
    after = httpx.get(f"{server.url}/v1/builds", params={"limit": 1}).json()
    assert [b["id"] for b in after] == [b["id"] for b in before], browser.title  # nothing was queued
    assert "sent 2" not in browser.title  # no success answered either (a 403 is unreadable cross-origin)
    assert httpx.get(f"{server.url}/v1/models", params={"q": f"evil_{tag}"}).json() == []
