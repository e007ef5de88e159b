"""NESTML's parse-only steps for the API: a model's parameters and state with their starting values (NEST
Desktop's ``getSpecs``), and NESTML 7/8 text upgraded for NESTML 9 before it is built.

Each is a NESTML process of the compiler's own (:meth:`nestml_registry.compiler.children.CodegenRunner.check`),
in the build sandbox with its time and memory limits, on the text as code generation would see it (comments
blanked, string literals checked: :mod:`nestml_registry.compiler.sanitise`), so a hostile text gets no further
here than in a build. Nothing is compiled. At most ``limit`` run at once (others wait their turn, off the
event loop), and answers are kept by the text's content, so asking again costs a dictionary look-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.errors import ToolchainError
from nestml_registry.compiler.sanitise import Sanitised, sanitise
from nestml_registry.service.api.errors import ApiError
from nestml_registry.service.settings import Settings

if TYPE_CHECKING:
    from nestml_registry.compiler.pipeline import Compiler
    from nestml_registry.compiler.upgrade import Upgraded

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Specs:
    """What one NESTML text declares: its models (as :func:`nestml_registry.compiler.codegen.describe` gives
    them, with ``values``), the comments of its declarations, and NESTML's errors (then no models)."""

    models: list[dict]
    sanitised: Sanitised
    diagnostics: list[Diagnostic]


class NestmlParser:
    """Parse-only NESTML steps for the API, at most ``limit`` at a time, the last ``keep`` answers kept."""

    def __init__(self, settings: Settings, limit: int = 2, keep: int = 512) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="nestml-parse")
        self._compiler: Compiler | None = None
        self._made = threading.Lock()
        self._answers: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._keep = keep

    def _compiler_now(self) -> Compiler:
        with self._made:
            if self._compiler is None:
                from nestml_registry.compiler.pipeline import Compiler

                self._compiler = Compiler(self.settings.compiler_config())
            return self._compiler

    def check(self, texts: dict[str, str], describe: bool = False) -> tuple[list[Diagnostic], list[dict]]:
        """NESTML's diagnostics of ``texts`` (name -> text) and, with ``describe``, their models: each text
        sanitised first, and refused with the sanitiser's diagnostics where it finds any."""
        cleaned = {name: sanitise(text, name) for name, text in texts.items()}
        refused = [d for s in cleaned.values() for d in s.diagnostics]
        if refused:
            return refused, []
        compiler = self._compiler_now()
        compiler.check_sandbox()
        outcome = compiler.codegen.check({name: s.text for name, s in cleaned.items()}, describe=describe)
        return outcome.diagnostics, outcome.models

    def _diagnostics(self, texts: dict[str, str]) -> list[Diagnostic]:
        return self.check(texts)[0]

    async def _kept(self, kind: str, texts: dict[str, str], work: Callable[[], T]) -> T:
        key = (kind, hashlib.sha256("\0".join(f"{n}\0{t}" for n, t in sorted(texts.items())).encode()).hexdigest())
        if key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except ToolchainError as exc:  # no NEST or NESTML here, no sandbox: the administrator's to fix
            logger.error("NESTML's parser cannot run in the API process: %s", exc)
            raise ApiError(503, "parser_unavailable", f"NESTML's parser cannot run on the registry's machine ({exc}); "
                           "tell the registry's administrator", {"dependency": "nestml"}) from exc
        self._answers[key] = answer
        while len(self._answers) > self._keep:
            self._answers.popitem(last=False)
        return answer

    async def upgrade(self, texts: dict[str, str]) -> list[Upgraded]:
        """``texts`` upgraded for NESTML 9 (:func:`nestml_registry.compiler.upgrade.upgrade`): unchanged where
        nothing is old; NESTML's remaining errors in each one's diagnostics."""
        from nestml_registry.compiler.upgrade import upgrade

        return await self._kept("upgrade", texts, lambda: upgrade(texts, self._diagnostics))

    async def specs(self, name: str, text: str) -> Specs:
        """What ``text`` declares, with starting values (:mod:`nestml_registry.compiler.spec_values`)."""

        def work() -> Specs:
            diagnostics, models = self.check({name: text}, describe=True)
            errors = [d for d in diagnostics if d.severity == "error"]
            return Specs([] if errors else models, sanitise(text, name), errors)

        return await self._kept("specs", {name: text}, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._compiler is not None:
            self._compiler.close()
