"""Publishing from Python, for notebooks and scripts: ``nestml_registry.publish(text)``.

::

    import nestml_registry
    published = nestml_registry.publish('''
    model my_neuron:
        ...
    ''')                                            # -> ["my_neuron_nestml@1"]
    name = nestml_registry.install(published[0])    # the next cell

A source is NESTML text (as BMTK's tutorial keeps it, in a Python string) or the path of a ``.nestml``
file. The build's progress shows as a bar (in Jupyter and in a terminal); a build that fails raises
:class:`~nestml_registry.service.client.errors.RegistryClientError` whose message shows each error at
its
line and column of the text, with that line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nestml_registry.service.client import RegistryClient
from nestml_registry.service.client.errors import RegistryClientError

_MODEL_RE = re.compile(r"^[ \t]*(?:model|neuron|synapse)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.MULTILINE)
# where a build is on its way, in the order a worker goes (the build document's ``stage``)
STAGES = ("queued", "generating code", "compiling", "loading in NEST")


def source_file(source: str | os.PathLike) -> tuple[str, bytes]:
    """``(file name, bytes)`` of NESTML text (named after its first model) or of a ``.nestml`` file."""
    if not isinstance(source, str | os.PathLike):
        raise RegistryClientError(f"a source is NESTML text or the path of a .nestml file, not a "
                                  f"{type(source).__name__}", code="invalid_input")
    if isinstance(source, os.PathLike) or ("\n" not in source and source.strip().endswith(".nestml")):
        path = Path(source)
        try:
            return path.name, path.read_bytes()
        except OSError as exc:
            raise RegistryClientError(f"{path}: cannot read it ({exc.strerror or exc}); give NESTML text or the path "
                                      "of a .nestml file", code="invalid_input") from exc
    found = _MODEL_RE.search(source)
    if found is None:
        raise RegistryClientError("this text declares no model: give NESTML text with a 'model NAME:' line, or the "
                                  "path of a .nestml file", code="invalid_input")
    return f"{found.group(1)}.nestml", source.encode("utf-8")


class BuildProgress:
    """The build's stage as a progress bar (tqdm's: a widget in Jupyter, a line in a terminal)."""

    def __init__(self, label: str, show: bool) -> None:
        self.bar: Any = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(STAGES), desc=label, bar_format="{desc}: {bar} {postfix}", leave=True)

    def update(self, build: dict[str, Any]) -> None:
        if self.bar is None:
            return
        stage = str(build.get("stage") or build.get("status") or "")
        done = len(STAGES) if build.get("status") in ("succeeded", "failed") else (
            STAGES.index(stage) if stage in STAGES else self.bar.n)
        self.bar.set_postfix_str(f"build {build.get('id')} {stage}", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def failure_text(build: dict[str, Any], texts: dict[str, str]) -> str:
    """The build's errors, each with its place (file:line:col) and that line of the source."""
    errors = [d for d in build.get("diagnostics") or [] if d.get("severity") == "error"]
    lines = [f"build {build.get('id')} failed: {len(errors) or 'no'} error{'s' if len(errors) != 1 else ''}"]
    for d in errors or [{"message": build.get("error") or "see its log"}]:
        where = ":".join(str(x) for x in (d.get("file") or "<build>", d.get("line"), d.get("column")) if x is not None)
        lines.append(f"{where}: error: {d.get('message')}")
        source = texts.get(str(d.get("file")), "").splitlines()
        if d.get("line") and 0 < int(d["line"]) <= len(source):
            lines.append("    " + source[int(d["line"]) - 1])
            if d.get("column"):
                lines.append("    " + " " * (int(d["column"]) - 1) + "^")
    return "\n".join(lines)


def publish(*sources: str | os.PathLike, module: str | None = None, pairs: Sequence[Any] = (),
            suffix: str | None = None, breaking: bool = False, retry: bool = False, server: str | None = None,
            token: str | None = None, timeout: float | None = None, progress: bool = True) -> list[str]:
    """Push ``sources`` (NESTML texts or ``.nestml`` paths) to the registry, follow the build, and return
    what it published as references (``["my_neuron_nestml@1"]``) for ``install``. Raises
    :class:`RegistryClientError` (``code`` ``build_failed`` with the diagnostics in ``details``, or the
    API's code) when nothing is published."""
    if not sources:
        raise RegistryClientError("publish() needs NESTML text or a .nestml path", code="invalid_input")
    files = [source_file(s) for s in sources]
    texts = {name: data.decode("utf-8", errors="replace") for name, data in files}
    with RegistryClient.from_env(server, token) as client:
        build = client.submit_build(files, module=module, pairs=pairs, suffix=suffix, retry=retry,
                                    breaking=breaking)
        bar = BuildProgress(", ".join(texts), progress)
        try:
            done = client.wait_build(build["id"], on_progress=bar.update, timeout=timeout)
        finally:
            bar.close()
    if done.get("status") != "succeeded":
        raise RegistryClientError(failure_text(done, texts), None, "build_failed",
                                  {"build": done.get("id"), "diagnostics": done.get("diagnostics") or []})
    return [f"{m['name']}@{m['version']}" for m in done.get("models") or []]
