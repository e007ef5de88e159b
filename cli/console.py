"""What the CLI shows on a terminal: build progress, build outcomes, tables of models and parameters.

Everything here writes to the streams it is given; nothing decides exit statuses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.registry.breaks import describe_breaks

if TYPE_CHECKING:
    from nestml_registry.compiler.result import BuildResult

SPINNER_UTF8 = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_ASCII = "|/-\\"


def stage_of(build: dict[str, Any]) -> str:
    """A build's progress in words: queued, starting, generating code, compiling, loading in NEST, done."""
    status = build.get("status") or "unknown"
    stage = (build.get("stage") or "").strip()
    if status == "succeeded":
        return "done"
    if status == "failed":
        return "failed"
    if status == "queued":
        return stage if stage.startswith("queued") else "queued"
    if status == "running":
        return "starting" if stage in ("", "claimed", "running", "queued") else stage
    return status


class BuildProgress:
    """Follows a build: a spinner with the elapsed time and the stage on a terminal (``live``), else one
    line per stage change (``plain``), else nothing. Call it with each build document; close it at the end."""

    def __init__(self, stream: TextIO, build_id: Any, *, live: bool, plain: bool = True) -> None:
        self.stream = stream
        self.build_id = build_id
        self.live = live
        self.plain = plain and not live
        self.start = time.monotonic()
        self.stage = "submitted"
        self._printed: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self._frames = SPINNER_UTF8 if encoding == "utf8" else SPINNER_ASCII
        self._thread: threading.Thread | None = None
        if live:
            self._thread = threading.Thread(target=self._spin, name="build-progress", daemon=True)
            self._thread.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, build: dict[str, Any]) -> None:
        self.stage = stage_of(build)
        if self.plain and self.stage != self._printed:
            self._printed = self.stage
            self.stream.write(f"[{self.elapsed():6.1f} s] build {self.build_id}: {self.stage}\n")
            self.stream.flush()

    def _draw(self, frame: str, end: str = "") -> None:
        with self._lock:
            self.stream.write(f"\r{frame} build {self.build_id}  {self.elapsed():5.1f} s  {self.stage}\x1b[K{end}")
            self.stream.flush()

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(0.1):
            self._draw(self._frames[i % len(self._frames)])
            i += 1

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._draw(" ", "\n")


def print_diagnostics(build: dict[str, Any], stream: TextIO) -> int:
    """Print a build's diagnostics like a compiler (``file:line:col: error: message``); return the errors."""
    diagnostics = [Diagnostic.from_dict(d) for d in build.get("diagnostics") or [] if isinstance(d, dict)]
    for d in diagnostics:
        stream.write(d.format() + "\n")
    errors = sum(d.severity == "error" for d in diagnostics)
    if build.get("status") == "failed" and errors == 0:
        stream.write(Diagnostic.error(build.get("error") or "the build failed without saying why").format() + "\n")
        errors = 1
    return errors


def print_failure(build: dict[str, Any], stream: TextIO) -> None:
    errors = print_diagnostics(build, stream)
    stream.write(f"build {build.get('id')} failed: {errors} error{'s' if errors != 1 else ''} "
                 f"(its log: nestml-registry build {build.get('id')} --log)\n")


def print_success(build: dict[str, Any], out: TextIO, err: TextIO) -> None:
    print_diagnostics(build, err)  # warnings
    module = build.get("module") or {}
    out.write(f"{module.get('name')}, sha256 {module.get('sha256')} (build {build.get('id')})\n")
    for m in build.get("models") or []:
        version = f"  version {m['version']}" if m.get("version") is not None else ""
        out.write(f"  {m.get('kind') or '':8} {m.get('name')}{version}\n")
        if m.get("breaks"):
            out.write(f"           breaks what version {m['breaks'].get('from_version')} has: "
                      f"{describe_breaks(m['breaks'])}\n")


def describe_changes(changes: dict[str, Any] | None) -> str:
    """One line for a version's "what changed" (``show``)."""
    if not changes:
        return "first version"
    if changes.get("comments_only"):
        return "comments only" + ("; same module" if changes.get("same_module") else "")
    parts = [f"{c.get('name')} {c.get('change')}" for c in (changes.get("parameters") or []) + (changes.get("state")
                                                                                               or [])]
    broken = describe_breaks(changes.get("breaks") or {})
    text = ", ".join(parts) or "the equations or other code changed"
    return f"{text} (breaks: {broken})" if broken else text


def table(rows: Sequence[Sequence[Any]], stream: TextIO, indent: str = "") -> None:
    """Left-aligned columns; the first row is the header. Empty cells print as '-'."""
    cells = [["-" if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    for row in cells:
        stream.write(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")


def _count(versions: Any) -> Any:
    return len(versions) if isinstance(versions, list) else versions


# the units NEST keeps these quantities in (NESTML converts others, e.g. s to ms, when it generates code)
_NEST_UNITS = frozenset({"mV", "ms", "pA", "nS", "pF", "Hz", "1/ms", "1/s", "mV/ms", "pA/ms", "nS/ms", "MOhm"})


def _in_nest(p: dict[str, Any]) -> Any:
    """NEST's default of a variable, with its unit when NEST keeps the value in that unit."""
    value, unit = p.get("value"), str(_unit(p) or "").replace(" ", "")
    if isinstance(value, int | float) and not isinstance(value, bool) and unit in _NEST_UNITS:
        return f"{value:g} {unit}"
    return value


def _partner(name: str) -> str | None:
    """The other half of a paired model: ``a_nestml__with_b_nestml`` -> ``b_nestml__with_a_nestml``."""
    if PAIR_MARK not in name:
        return None
    mine, other = name.split(PAIR_MARK, 1)
    return f"{other}__with_{mine}"


def print_models(models: list[dict[str, Any]], stream: TextIO) -> None:
    """The models, each pair's neuron and synapse together (with the name of the other half)."""
    by_name = {m.get("name"): m for m in models}
    ordered: list[dict[str, Any]] = []
    for m in models:
        if m in ordered:
            continue
        ordered.append(m)
        other = by_name.get(_partner(str(m.get("name"))))
        if other is not None and other not in ordered:
            ordered.append(other)
    rows: list[list[Any]] = [["NAME", "KIND", "VERSION", "VERSIONS", "OWNER", "AGAINST NEST", "PAIRED WITH"]]
    rows += [[m.get("name"), m.get("kind"), m.get("version"), _count(m.get("versions")), m.get("owner"),
              m.get("verdict") or "", _partner(str(m.get("name"))) or ""] for m in ordered]
    table(rows, stream)


def print_builds(builds: list[dict[str, Any]], stream: TextIO) -> None:
    rows: list[list[Any]] = [["ID", "STATUS", "MODULE", "FILES", "BY", "QUEUED"]]
    rows += [[b.get("id"), b.get("status"), b.get("module") or "", ",".join(b.get("sources") or []),
              b.get("submitted_by"), str(b.get("created_at") or "")[:19].replace("T", " ")] for b in builds]
    table(rows, stream)


def print_diff(diff: dict[str, Any], stream: TextIO) -> None:
    """Two versions compared: parameter and state changes, then the sources' unified diff."""
    name, a, b = diff.get("model"), diff.get("from_version"), diff.get("to_version")
    stream.write(f"{name}: version {a} -> {b}\n")
    for kind in ("parameters", "state"):
        changes = diff.get(kind) or []
        if not changes:
            stream.write(f"{kind}: no changes\n")
            continue
        stream.write(f"{kind}:\n")
        rows: list[list[Any]] = [["NAME", "CHANGE", "BEFORE", "AFTER"]]
        rows += [[c.get("name"), c.get("change"), c.get("before"), c.get("after")] for c in changes]
        table(rows, stream, indent="  ")
    source = diff.get("source_diff") or ""
    stream.write(source if source else "source: the same text\n")


def choose_version(detail: dict[str, Any], reference: str) -> dict[str, Any] | None:
    """The version a reference names (``NAME@VERSION``), else the newest."""
    versions = [v for v in detail.get("versions") or [] if isinstance(v, dict)]
    if not versions:
        return None
    if "@" in reference:
        wanted = reference.rsplit("@", 1)[1]
        for v in versions:
            if str(v.get("version")) == wanted:
                return v
    return max(versions, key=lambda v: v.get("version") or 0)


def _unit(var: dict[str, Any]) -> Any:
    return var.get("unit") or var.get("type")


def print_model(detail: dict[str, Any], reference: str, stream: TextIO) -> None:
    """A model's newest (or named) version: parameters with units and defaults, state, input ports."""
    v = choose_version(detail, reference) or {}
    listed = detail.get("all_versions") or detail.get("versions") or []  # every version, also for NAME@VERSION
    numbers = [f"{x['version']}{' (yanked)' if x.get('yanked') else ''}"
               for x in sorted((x for x in listed if isinstance(x, dict) and isinstance(x.get("version"), int)),
                               key=lambda x: x["version"])]
    stream.write(f"{detail.get('name')}  {v.get('kind') or detail.get('kind') or ''} version {v.get('version')}"
                 f" (versions {', '.join(numbers) or '-'})"
                 + (f", owner {detail['owner']}" if detail.get("owner") else "") + "\n")
    yanked = v.get("yanked") or {}
    if yanked:
        stream.write(f"yanked by {yanked.get('by')}: {yanked.get('reason')} (unpinned references skip this version; "
                     "NAME@VERSION and lock files still resolve it)\n")
    source = v.get("source") or {}
    if source:
        stream.write(f"source: {source.get('name')} (sha256 {str(source.get('sha256'))[:12]})\n")
    if v.get("changes"):
        stream.write(f"changed since version {v['changes'].get('from_version')}: {describe_changes(v['changes'])}\n")
    pinned = f"{detail.get('name')}@{v.get('version')}"
    stream.write(f"use: BMTK model_template nestml:{pinned}; PyNEST name = nestml_registry.install({pinned!r})"
                 + (f"; PyNN sim.native_cell_type(nestml_registry.install({pinned!r}))" if v.get("kind") == "neuron"
                    else "") + "\n")
    for m in v.get("modules") or []:
        stream.write(f"module: {m.get('name')} sha256 {str(m.get('sha256'))[:12]} for {m.get('toolchain')}\n")
    for title, key in (("parameters", "parameters"), ("state", "state")):
        variables = v.get(key) or []
        stream.write(f"\n{title}:\n")
        if not variables:
            stream.write("  (none)\n")
            continue
        rows: list[list[Any]] = [["NAME", "UNIT/TYPE", "DEFAULT", "IN NEST", "COMMENT"]]
        rows += [[p.get("name"), _unit(p), p.get("default"), _in_nest(p), p.get("comment")] for p in variables]
        table(rows, stream, "  ")
    ports = v.get("input_ports") or []
    stream.write("\ninput ports:\n")
    if not ports:
        stream.write("  (none)\n")
        return
    receptors = v.get("receptor_types") or {}
    rows = [["NAME", "KIND", "UNIT/TYPE", "RECEPTOR"]]
    rows += [[p.get("name"), p.get("kind"), _unit(p), receptors.get(str(p.get("name")).upper())] for p in ports]
    table(rows, stream, "  ")


class Stages:
    """Prints the stages of a local build to a terminal as they happen (nothing when not a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()

    def __call__(self, stage: str) -> None:
        if self.stream.isatty():
            print(f"  [{time.monotonic() - self.start:5.1f} s] {stage}...", file=self.stream, flush=True)


def print_result(result: BuildResult, seconds: float, out: TextIO, err: TextIO) -> None:
    """A local build's outcome: its diagnostics on ``err``; the module, its models and path on ``out``."""
    for d in result.diagnostics:
        print(d.format(), file=err)
    if not result.ok:
        errors = sum(d.severity == "error" for d in result.diagnostics)
        print(f"build failed: {errors} error{'s' if errors != 1 else ''}"
              + (f" (build log: {result.log_path})" if result.log_path else ""), file=err)
        return
    how = "cached" if result.cached else f"built in {seconds:.1f} s"
    print(f"{result.module_name} ({how}), sha256 {result.module_sha256}", file=out)
    for m in result.models:
        print(f"  {m.kind:8} {m.name}", file=out)
    print(result.module_path, file=out)


def print_verdict(check: dict[str, Any], stream: TextIO) -> None:
    """The version against its NEST counterpart: the verdict in a line, why they differ where it is known."""
    if not check:
        return
    stream.write(f"\nagainst NEST: {check.get('summary')}\n")
    for key, label in (("explanation", "why"), ("error", "error")):
        if check.get(key):
            stream.write(f"  {label}: {check[key]}\n")
    failing = [r for r in check.get("stimuli") or [] if not r.get("agree")]
    if failing:
        stream.write("  where: " + "; ".join(f"{r['stimulus']} ({r['spikes'][0]} / {r['spikes'][1]} spikes)"
                                            for r in failing[:4]) + (" ..." if len(failing) > 4 else "") + "\n")


def print_characterisation(doc: dict[str, Any], stream: TextIO, points: int = 6) -> None:
    """A characterisation in a few lines: status, how current was injected, rheobase, some f-I points."""
    status = doc.get("status")
    head = f"\ncharacterisation ({status}"
    if doc.get("protocol"):
        head += f", protocol {doc['protocol'].get('version')}"
    stream.write(head + "):\n")
    for key in ("reason", "error"):
        if doc.get(key):
            stream.write(f"  {doc[key]}\n")
    if status != "succeeded":
        return
    how = {"port": "a dc_generator into its continuous current input", "I_e": "its I_e parameter"}
    stream.write(f"  current injected through {how.get(str(doc.get('injection')), doc.get('injection'))}\n")
    rb = doc.get("rheobase_pA")
    stream.write("  rheobase: " + ("no spike up to the protocol's largest current" if rb is None else
                                   "fires without input" if rb == 0 else f"{rb:.4g} pA") + "\n")
    fi = doc.get("fi_curve") or []
    if fi:
        step = max(1, len(fi) // points)
        shown = ", ".join(f"{p['current_pA']:.4g} pA: {p['rate_hz']:.4g} Hz" for p in fi[::step])
        stream.write(f"  f-I: {shown}\n")
    prev = doc.get("previous")
    if prev and prev.get("rheobase_pA") is not None:
        stream.write(f"  version {prev.get('version')}: rheobase {prev['rheobase_pA']:.4g} pA\n")
    if doc.get("membrane_reason"):
        stream.write(f"  {doc['membrane_reason']}\n")
    elif doc.get("membrane") and doc["membrane"] != "V_m":
        stream.write(f"  membrane potential recorded: {doc['membrane']}\n")
    found = {k: v for k, v in (doc.get("features") or {}).items() if v is not None}
    if found:
        stream.write("  features: " + ", ".join(f"{k} {v:.4g}" for k, v in found.items()) + "\n")


# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and isolates that reorder
# what a terminal shows ("Trojan Source"): a publisher's text never drives the reader's terminal
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control character written out (``\\x1b``), so that it shows and does nothing."""
    return _UNSAFE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class VisibleText:
    """A text stream that writes everything through :func:`visible` (the CLI's standard output, which shows
    publishers' names, comments and sources)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(visible(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
