"""The sandbox of build steps, tried as a hostile build would (code running in a step), with the real
bubblewrap: no root, no network, nothing of the service's to read or write, and limits that hold.
These compile nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nestml_registry.compiler import children, outputs
from nestml_registry.compiler.sandbox import Limits, Sandbox, SandboxConfig, SandboxError, python_paths
from nestml_registry.compiler.workspace import Workspace

PROBE = r"""
import json, os, socket, sys, resource
out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
       "env": dict(os.environ), "pid": os.getpid(),
       "caps": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
       "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0], "as": resource.getrlimit(resource.RLIMIT_AS)[0],
       "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "cgroups": open("/proc/self/cgroup").read()}
def attempt(what, fn):
    try:
        fn()
        out[what] = "allowed"
    except Exception as exc:
        out[what] = type(exc).__name__
attempt("connect", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
attempt("read_secret", lambda: open(sys.argv[2]).read())
attempt("write_outside", lambda: open(sys.argv[3], "w").write("x"))
attempt("write_root", lambda: open("/planted", "w").write("x"))
out["top"] = sorted(os.listdir("/"))
out["interfaces"] = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None
open("probe.json", "w").write(json.dumps(out))
"""


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(), python_paths())


def _listening_port() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    return srv, srv.getsockname()[1]


def test_a_step_runs_unprivileged_without_network_or_the_services_files(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NESTML_REGISTRY_DATABASE_URL", "postgresql+psycopg://registry:secret@127.0.0.1/db")
    monkeypatch.setenv("NESTML_REGISTRY_TOKEN", "nrt_secret_token")
    secret = tmp_path / "registry.db"
    secret.write_text("tokens and sources")
    secret.chmod(0o644)
    srv, port = _listening_port()
    ws = Workspace.create(tmp_path / "work", "b-", sandbox, {})
    try:
        step = ws.run("probe", [sys.executable, "-c", PROBE, str(port), str(secret), str(tmp_path / "planted")],
                      log=tmp_path / "log", timeout=60)
    finally:
        srv.close()
    assert step.ok, (tmp_path / "log").read_text()
    out = outputs.read_json(ws.path, "probe.json")
    assert out["uid"] != 0 and out["euid"] != 0 and out["gid"] != 0 and out["caps"] == "0000000000000000"
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid(out["uid"]).pw_name == "nestml-build" and out["groups"] in ([], [out["gid"]])
    assert out["connect"] != "allowed"  # the host's loopback is another network
    assert out["read_secret"] == "FileNotFoundError"  # not even there
    assert out["write_outside"] != "allowed" and not (tmp_path / "planted").exists()
    assert out["write_root"] != "allowed"
    # a root of its own: system folders, and the parents of what it was given (Python, its work folder)
    given = {Path(p).parts[1] for p in [*map(str, python_paths()), str(ws.path)]}
    assert set(out["top"]) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc",
                               "opt", *given}, out["top"]
    assert not any(k.startswith("NESTML_REGISTRY") for k in out["env"]), out["env"]
    assert out["env"]["HOME"] == str(ws.path)
    limits = Limits()
    assert (out["as"], out["fsize"]) == (limits.memory_bytes, limits.file_bytes)
    group = sandbox.group()
    if group is None:  # the sandbox user's processes are limited as a whole
        assert out["nproc"] == limits.processes
    else:  # the build's processes are, in its group, and every build has its own
        assert f"/w{os.getpid()}-" in out["cgroups"] or "0::/\n" in out["cgroups"], out["cgroups"]
        assert (group.folders.get("pids", group.folders.get("unified")) / "pids.max").read_text().strip() == \
            str(limits.processes)
    assert out["pid"] < 10  # a PID namespace of its own


def test_the_host_sees_an_unprivileged_process_in_other_namespaces(sandbox: Sandbox, tmp_path: Path) -> None:
    """What /proc says about a step while it runs."""
    ws = Workspace.create(tmp_path, "b-", sandbox, {})
    argv = ws.command([sys.executable, "-c", "import time; open('started', 'w').close(); time.sleep(30)"], 60)
    proc = subprocess.Popen(argv, cwd=ws.path, env=ws.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (ws.path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in _descendants(proc.pid) if _cmdline(p).startswith(sys.executable)]
        assert pids, "the step never started"
        status = Path(f"/proc/{pids[0]}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert "0" not in uids, status
        for ns in ("net", "mnt", "pid", "ipc"):
            assert os.readlink(f"/proc/{pids[0]}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        assert "NoNewPrivs:\t1" in status or os.geteuid() != 0
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    time.sleep(0.2)
    assert not [p for p in _all_pids() if "time.sleep(30)" in _cmdline(p)], "the step outlived its sandbox"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


@pytest.mark.slow
def test_limits_stop_a_step_that_grows(sandbox: Sandbox, tmp_path: Path) -> None:
    small = Sandbox(SandboxConfig(limits=Limits(memory_bytes=1024 ** 3, file_bytes=1024 ** 2, processes=64)),
                    python_paths())
    ws = Workspace.create(tmp_path, "b-", small, {})
    grow = "x = []\nwhile True: x.append(bytearray(64 * 1024 * 1024))"
    step = ws.run("memory", [sys.executable, "-c", grow], log=tmp_path / "log", timeout=60)
    assert not step.ok and "MemoryError" in (tmp_path / "log").read_text()
    write = "open('big', 'wb').write(b'x' * (2 * 1024 * 1024))"
    step = ws.run("file", [sys.executable, "-c", write], log=tmp_path / "log2", timeout=60)
    assert not step.ok and (ws.path / "big").stat().st_size <= 1024 ** 2
    spin = "while True: pass"
    start = time.monotonic()
    step = ws.run("cpu", [sys.executable, "-c", spin], log=tmp_path / "log3", timeout=1.5)
    assert not step.ok and time.monotonic() - start < 30


def test_outputs_are_never_read_through_a_link(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"token": "nrt_x"}))
    ws = Workspace.create(tmp_path, "b-", sandbox, {})
    (ws.path / "codegen.json").symlink_to(secret)
    (ws.path / "target").symlink_to(tmp_path)
    for rel in ("codegen.json", "target/secret.json", "../secret.json"):
        with pytest.raises(outputs.OutputError):
            outputs.read_json(ws.path, rel)
    (ws.path / "huge.json").write_text("[" + "1," * 1000 + "1]")
    with pytest.raises(outputs.OutputError, match="more than"):
        outputs.read_json(ws.path, "huge.json", limit=100)
    fifo = ws.path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(outputs.OutputError, match="not a regular file"):
        outputs.read_json(ws.path, "fifo.json")


def test_no_sandbox_user_is_a_clear_refusal(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox user is only needed when the service runs as root")
    box = Sandbox(SandboxConfig(user="no-such-build-user"), python_paths())
    with pytest.raises(SandboxError, match=r"does not exist: build steps never run as root.*useradd"):
        box.check(tmp_path)


def test_without_bubblewrap_the_check_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match=r"bwrap.*not found.*bubblewrap.*NESTML_REGISTRY_SANDBOX=0"):
        Sandbox(SandboxConfig(), python_paths()).check(tmp_path / "scratch")


def test_opting_out_keeps_the_limits(tmp_path: Path) -> None:
    box = Sandbox(SandboxConfig(enabled=False, build_group=False), python_paths())
    argv = box.command(["true"], work=tmp_path, cpu_seconds=5)
    assert argv[0] == "prlimit" and "bwrap" not in argv and argv[-1] == "true"
    grouped = Sandbox(SandboxConfig(enabled=False), python_paths())
    argv = grouped.command(["true"], work=tmp_path, cpu_seconds=5)
    assert "prlimit" in argv and "bwrap" not in argv and argv[-1] == "true"
    grouped.close()
    assert "off" in box.describe()
    box.check(tmp_path)  # nothing to check


@pytest.mark.parametrize("data", [[], "x", {"ok": True}, {"ok": True, "diagnostics": "no", "models": []},
                                  {"ok": True, "diagnostics": [], "models": [{"nestml_name": "a; system()"}]},
                                  {"ok": True, "diagnostics": [1], "models": []}])
def test_a_forged_code_generation_result_is_a_failed_build(data: object) -> None:
    with pytest.raises((TypeError, KeyError, AttributeError, ValueError)):
        children._parse_codegen(data, Limits())


@pytest.mark.parametrize("data", [[], {"ok": True, "node_models": ["x; rm"], "synapse_models": []},
                                  {"ok": True, "node_models": [1], "synapse_models": []},
                                  {"ok": True, "node_models": ["a_nestml"], "synapse_models": [], "defaults": []}])
def test_a_forged_load_result_is_refused(data: object) -> None:
    with pytest.raises((TypeError, KeyError, AttributeError, ValueError)):
        children._parse_loaded(data)


def test_a_diagnostic_from_a_step_is_cut_to_its_fields() -> None:
    raw = {"file": "x.nestml", "line": "3; drop", "column": True, "severity": "fatal", "message": "m" * 10_000,
           "extra": "ignored"}
    d = children._diag_dict(raw)
    assert d["line"] is None and d["column"] is None and d["severity"] == "error" and len(d["message"]) == 4000
    assert "extra" not in d
