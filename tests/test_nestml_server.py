"""NEST Desktop's front door with real parts: ``nestml-registry serve`` with a compile worker, NEST Desktop's
requests sent by a page of another origin in headless Chromium (as its axios client sends them: JSON, the
``AccessToken`` header, a CORS preflight), NEST Desktop's own bundled NESTML 8 model upgraded and built,
and NEST Server from the NEST wheel installing the generated module and simulating it."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import start_chromium
from conftest import DATA
from server_fixtures import Server, free_port, start_server

pytestmark = pytest.mark.slow
FRONT = "/compat/nestml-server"
IZHIKEVICH = (DATA / "nest_desktop" / "izhikevich_neuron.nestml").read_text()
MODULE = "nestmlmodule"
# what NEST Desktop's axios client does for each call (nestmlServerStore.ts, ModelEditor.vue): JSON bodies,
# the token in an AccessToken header; the answer's status, JSON and whether the browser let the page read it
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>NEST Desktop stand-in page</title></head>
<body><script>
async function call(base, token, method, path, body) {
  const headers = {"Accept": "application/json, text/plain, */*"};
  if (token) headers["AccessToken"] = token;
  const hasBody = body !== undefined && body !== null;
  if (hasBody) headers["Content-Type"] = "application/json";
  const started = performance.now();
  try {
    const r = await fetch(base + path, {method, headers, body: hasBody ? JSON.stringify(body) : undefined});
    return {status: r.status, data: await r.json(), ms: performance.now() - started};
  } catch (e) { return {status: 0, error: String(e)}; }
}
</script></body></html>"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def desktop_origin() -> Iterator[str]:
    """A page of NEST Desktop's usual origin kind, ``http://localhost:PORT``: another origin than the registry's."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, registry_home: Path) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("front-door")
    server = start_server(directory, registry_home, allow_anonymous_publish="0",
                          compat_module_dir=str(directory / "nest-modules"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(registry: Server) -> str:
    proc = registry.cli("token", "create", "--name", "nest-desktop", "--role", "publisher", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["token"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_script_timeout(900)
    yield driver
    driver.quit()


def from_page(browser: Any, base: str, token: str | None, method: str, path: str, body: Any = None) -> dict:
    """One request made by the page (another origin), as NEST Desktop makes it."""
    script = ("const done = arguments[arguments.length - 1];"
              "call(arguments[0], arguments[1], arguments[2], arguments[3], arguments[4]).then(done);")
    return browser.execute_async_script(script, base, token, method, path, body)


def generate(name: str, script: str) -> dict:
    return {"module_name": MODULE, "models": [{"element_type": "neuron", "name": name, "script": script}]}


@pytest.fixture(scope="module")
def generated(registry: Server, token: str, browser: Any, desktop_origin: str) -> dict:
    """NEST Desktop's sequence from its page: ping, getSpecs of its bundled model, generateModels, installed."""
    browser.get(desktop_origin + "/")
    base = registry.url + FRONT
    ping = from_page(browser, base, token, "GET", "")
    specs = from_page(browser, base, token, "POST", "/getSpecs", {"element_type": "neuron", "script": IZHIKEVICH})
    first = from_page(browser, base, token, "POST", "/generateModels", generate("izhikevich_neuron", IZHIKEVICH))
    installed = from_page(browser, base, token, "GET", f"/module/{MODULE}/installed")
    again = from_page(browser, base, token, "POST", "/generateModels", generate("izhikevich_neuron", IZHIKEVICH))
    return {"ping": ping, "specs": specs, "first": first, "installed": installed, "again": again}


def test_nest_desktops_requests_from_its_page_are_answered(generated: dict) -> None:
    ping = generated["ping"]
    assert ping["status"] == 200, ping
    assert ping["data"]["nest"] == "3.10.0" and ping["data"]["nestml"].startswith("9."), ping  # "nestml": valid
    first = generated["first"]
    assert first["status"] == 200, first
    assert first["data"]["status"] == {"INITIALIZED": ["izhikevich_neuron"], "WRITTEN": ["izhikevich_neuron"],
                                       "BUILT": ["izhikevich_neuron"], "INSTALLED": ["izhikevich_neuron"]}
    assert generated["installed"] == {**generated["installed"], "status": 200, "data": ["izhikevich_neuron"]}


def test_nest_desktops_nestml_8_model_is_upgraded_and_says_so(generated: dict) -> None:
    upgraded = generated["first"]["data"]["upgraded"]
    assert {u["line"] for u in upgraded} == {14, 15, 29}, upgraded
    assert all("free-standing units" in u["change"] for u in upgraded)


def test_specs_of_nest_desktops_model(generated: dict) -> None:
    specs = generated["specs"]
    assert specs["status"] == 200, specs
    params = {p["id"]: p for p in specs["data"]["params"]}
    assert params["a"] == {"id": "a", "label": "describes time scale of recovery variable", "value": 0.02,
                           "expression": ".02"}
    assert params["c"]["value"] == -65.0 and params["c"]["unit"] == "mV"
    states = {s["id"]: s for s in specs["data"]["states"]}
    assert states["v"]["value"] == -65.0 and states["v"]["label"] == "Membrane potential in mV"


def test_the_same_script_again_compiles_nothing(generated: dict, registry: Server) -> None:
    first, again = generated["first"], generated["again"]
    assert again["status"] == 200 and again["data"]["build"] == first["data"]["build"], again
    builds = httpx.get(f"{registry.url}/v1/builds", timeout=30).json()
    assert [b["id"] for b in builds] == [first["data"]["build"]], builds
    print(f"generateModels from the page: first {first['ms']:.0f} ms, again {again['ms']:.1f} ms")


def test_the_module_is_in_nest_servers_folder(generated: dict, registry: Server) -> None:
    module = generated["first"]["data"]["module"]
    path = registry.home.parent / "nest-modules" / f"{MODULE}.so"
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == module["sha256"]
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary file left


def test_an_error_answers_400_with_the_line_nest_desktop_marks(registry: Server, token: str, browser: Any,
                                                                  desktop_origin: str) -> None:
    browser.get(desktop_origin + "/")
    broken = IZHIKEVICH.replace("u real = 0", "u real = = 0")
    for path, body in (("/generateModels", generate("izhikevich_neuron", broken)),
                       ("/getSpecs", {"element_type": "neuron", "script": broken})):
        answer = from_page(browser, registry.url + FRONT, token, "POST", path, body)
        assert answer["status"] == 400, answer
        assert answer["data"]["lineNumber"] == 5, answer
        assert answer["data"]["message"].startswith("izhikevich_neuron.nestml:5:18: error:" if "generate" in path
                                                    else "model.nestml:5:18: error:"), answer


def test_other_origins_and_missing_tokens_are_refused(registry: Server, token: str, desktop_origin: str) -> None:
    body = generate("izhikevich_neuron", IZHIKEVICH)
    response = httpx.post(f"{registry.url}{FRONT}/generateModels", json=body, timeout=60,
                          headers={"Origin": "https://elsewhere.example", "AccessToken": token})
    assert response.status_code == 403 and "NESTML_REGISTRY_COMPAT_ORIGINS" in response.json()["message"]
    response = httpx.post(f"{registry.url}{FRONT}/generateModels", json=body, timeout=60,
                          headers={"Origin": desktop_origin})
    assert response.status_code == 401 and response.headers["access-control-allow-origin"] == desktop_origin


SPEC_MODEL = """\
model spec_values_neuron:
    parameters:
        # capacitance written in another unit
        C_m pF = 1 nF
        tau_m ms = 10 ms  # membrane time constant
        tau_syn ms = 2 * tau_m
        E_L mV = -70 mV
        V_reset mV = E_L - 5 mV
        g_L nS = C_m / tau_m
        refractory boolean = true
        n_max integer = 3
        drawn mV = random_normal(0 mV, 1 mV)
    state:
        V_m mV = E_L
    equations:
        V_m' = (E_L - V_m) / tau_m
    update:
        integrate_odes()
"""


def test_specs_work_out_expressions_in_the_declared_unit(registry: Server, token: str) -> None:
    response = httpx.post(f"{registry.url}{FRONT}/getSpecs", json={"script": SPEC_MODEL}, timeout=120,
                          headers={"AccessToken": token})
    assert response.status_code == 200, response.text
    params = {p["id"]: p for p in response.json()["params"]}
    assert params["C_m"] == {"id": "C_m", "label": "capacitance written in another unit", "value": 1000.0,
                             "unit": "pF", "expression": "1 nF"}
    assert params["tau_syn"]["value"] == 20.0 and params["V_reset"]["value"] == -75.0
    assert params["g_L"]["value"] == pytest.approx(100.0) and params["g_L"]["unit"] == "nS"
    assert params["refractory"]["value"] is True and "unit" not in params["refractory"]
    assert params["n_max"]["value"] == 3
    assert "value" not in params["drawn"]  # a random draw has no value before the model runs
    assert response.json()["states"] == [{"id": "V_m", "value": -70.0, "unit": "mV", "expression": "E_L"}]
    older = httpx.post(f"{registry.url}{FRONT}/getParams", json={"script": SPEC_MODEL}, timeout=120).json()
    assert older["params"]["tau_m"] == {"label": "membrane time constant", "value": 10.0, "unit": "ms",
                                        "expression": "10 ms"}


def test_specs_of_a_hostile_script_run_nothing(registry: Server, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = SPEC_MODEL.replace("tau_m ms = 10 ms", f"tau_m ms = eval(\"open('{marker}', 'w')\")")
    response = httpx.post(f"{registry.url}{FRONT}/getSpecs", json={"script": hostile}, timeout=120)
    assert response.status_code == 400, response.text
    assert "lineNumber" in response.json() and not marker.exists()


@pytest.fixture(scope="module")
def nest_server(generated: dict, registry: Server) -> Iterator[str]:
    """NEST Server of the NEST wheel (gunicorn, as ``nest-server start`` runs it) with the front door's module
    folder on its library path, as NEST's image does with NEST Desktop's shared module volume."""
    port = free_port()
    modules = registry.home.parent / "nest-modules"
    env = {**os.environ, "LD_LIBRARY_PATH": f"{modules}:{os.environ.get('LD_LIBRARY_PATH', '')}",
           "NEST_SERVER_ACCESS_TOKEN": "nest-desktop-test", "NEST_SERVER_ENABLE_EXEC_CALL": "1"}
    with open(registry.home.parent / "nest-server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "nest.server:app", "--bind",
                                 f"127.0.0.1:{port}", "--timeout", "120"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, (registry.home.parent / "nest-server.log") \
            .read_text()[-3000:]
        try:
            if httpx.get(url, headers={"NESTServerAuth": "nest-desktop-test"}, timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=60)


def test_nest_server_installs_the_module_and_simulates_the_model(nest_server: str) -> None:
    """NEST Desktop's own calls to NEST Server: ResetKernel, Install, the models, then a simulation."""
    headers = {"NESTServerAuth": "nest-desktop-test"}

    def api(call: str, body: Any = None) -> Any:
        response = httpx.post(f"{nest_server}/api/{call}", json=body or {}, headers=headers, timeout=120)
        assert response.status_code == 200, (call, response.text[:1000])
        return response.json()

    api("ResetKernel")
    api("Install", {"module_name": MODULE})
    assert "izhikevich_neuron" in api("GetKernelStatus", {"keys": ["node_models"]})[0]
    assert api("Create", {"model": "izhikevich_neuron", "n": 2}) == [1, 2]
    api("Simulate", {"t": 50.0})
    api("ResetKernel")  # NEST Desktop's simulation: reset, install (NEST forgets a module's models at a reset), run
    api("Install", {"module_name": MODULE})
    source = ("neuron = nest.Create('izhikevich_neuron')\n"
              "dc = nest.Create('dc_generator', params={'amplitude': 10.0})\n"
              "recorder = nest.Create('spike_recorder')\nnest.Connect(dc, neuron)\nnest.Connect(neuron, recorder)\n"
              "nest.Simulate(200.0)\nspikes = recorder.get('n_events')\n")
    response = httpx.post(f"{nest_server}/exec", json={"source": source, "return": "spikes"}, headers=headers,
                          timeout=120)
    assert response.status_code == 200, response.text[:1000]
    assert response.json()["data"] > 0


# NEST Desktop itself: its own steps, run by its own code in the page (its stores, its NESTModel class, its
# axios instance with the URL from its backends.json and the token from its session storage)
DESKTOP_STEPS = """
const done = arguments[arguments.length - 1];
(async () => {
  const pinia = document.querySelector('#app').__vue_app__.config.globalProperties.$pinia;
  const nestml = pinia._s.get('nestml-backend-store');
  const modelDB = pinia._s.get('nest-model-db');
  const modules = pinia._s.get('nest-module-store');
  const wait = async (ok) => { for (let i = 0; i < 600 && !ok(); i++) await new Promise(r => setTimeout(r, 100)); };
  await wait(() => nestml.state.response.status === 200 && nestml.axiosInstance().defaults.baseURL);
  if (nestml.state.response.status !== 200) throw new Error('NEST Desktop found no NESTML server');
  // NESTMLModelSelect: the template's script from NEST Desktop's own assets
  const script = await (await fetch('assets/workspaces/nest/models/nestml/izhikevich_neuron.nestml')).text();
  const model = modelDB.newModel({id: 'izhikevich_neuron', templateName: 'izhikevich_neuron', nestmlScript: script});
  // ModelEditor.vue's updateSpecs
  const specs = await nestml.axiosInstance().post('getSpecs', {element_type: model.elementType,
                                                                 script: model.nestmlScript});
  model.updateParameters(specs.data.params);
  model.updateStates(specs.data.states);
  // the module dialog (moduleStore.ts) and generateModels (nestmlServerStore.ts)
  const module = modules.findModule('nestmlmodule');
  module.models.push(model.id);
  const generated = await nestml.axiosInstance().post('/generateModels', {module_name: module.name,
    models: [{element_type: model.elementType, name: model.id, script: model.nestmlScript}]});
  modules.fetchInstalledModels(module.name);
  await wait(() => modules.state.installedModels.length > 0);
  done({valid: nestml.isValid, versions: nestml.state.response.data, url: nestml.state.url,
        paramIds: model.paramsAll.map(p => p.id), a: model.params.a.value,
        generated: generated.data.status, installed: modules.state.installedModels});
})().catch(e => done({error: String(e), data: e.response && e.response.data}));
"""


@pytest.fixture(scope="module")
def nest_desktop(registry: Server, nest_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NEST Desktop 4.2.0 from PyPI, served as its ``nest-desktop start`` serves it, on ``http://localhost:PORT``,
    configured as its container configures it (its backends.json): NEST Server, and the front door as its
    NESTML server."""
    nest_desktop_package = pytest.importorskip("nest_desktop")
    app = tmp_path_factory.mktemp("nest-desktop") / "app"
    import shutil

    shutil.copytree(Path(nest_desktop_package.__file__).parent / "app", app)
    (app / "assets" / "workspaces" / "nest" / "config" / "backends.json").write_text(json.dumps({
        "insite": {"port": 52056, "enabled": False},
        "nest": {"url": nest_server, "enabled": True},
        "nestml": {"url": registry.url + FRONT, "enabled": True}}))
    handler = type("App", (http.server.SimpleHTTPRequestHandler,), {
        "log_message": lambda *args: None, "__init__": lambda self, *a, **k: http.server.SimpleHTTPRequestHandler
        .__init__(self, *a, directory=str(app), **k)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()


def test_nest_desktop_itself_generates_its_model_through_the_front_door(nest_desktop: str, token: str,
                                                                          tmp_path: Path) -> None:
    driver = start_chromium(tmp_path / "profile")
    try:
        driver.set_script_timeout(900)
        driver.get(nest_desktop + "/")
        # NEST Desktop keeps its NESTML server's token in the tab's session storage (it has no field for it)
        driver.execute_script("sessionStorage.setItem('nestml-backend-store', JSON.stringify({state: "
                              "{accessToken: arguments[0]}}))", token)
        driver.get(nest_desktop + "/?reload#/nest")  # its main layout: it pings its backends, sets up its clients
        result = driver.execute_async_script(DESKTOP_STEPS)
        console = [e["message"] for e in driver.get_log("browser")]
    finally:
        driver.quit()
    assert "error" not in result, (result, console[-20:])
    assert result["valid"] and result["versions"]["nestml"].startswith("9."), result
    assert result["generated"]["INSTALLED"] == ["izhikevich_neuron"], result
    assert result["installed"] == ["izhikevich_neuron"], result
    assert {"a", "b", "c", "d"} <= set(result["paramIds"]) and result["a"] == 0.02, result
