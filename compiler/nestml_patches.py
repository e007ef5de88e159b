"""Changes to NESTML's frontend, applied only in the code generation child process: two exact
speed-ups and a fixed order where NESTML's depends on memory addresses.

The speed-ups take NESTML's processing of the shipped iaf_psc_exp, aeif_cond_exp and izhikevich
neurons from 2.2 / 2.2 / 1.05 s to about 1.75 / 1.6 / 0.6 s (benchmarks/compile.py measures the whole
compile). They change nothing NESTML computes: tests/test_nestml_patches.py compares the tokens, the
scopes and the generated code with and without them.

1. **The lexer's start state.** NESTML's lexer rule ``NEWLINE`` begins with the predicate
   ``{self.atStartOfInput()}?``. A predicate in the start state's closure makes ANTLR's Python
   runtime refuse to cache that state (``suppressEdge`` in ``LexerATNSimulator.matchATN``), so it
   recomputes the closure over the whole lexer ATN for every token, on the model file and on every
   expression NESTML re-parses. The predicate is the lexer's only one and depends on one thing,
   whether the token starts at line 1, column 0, so the start state is cached once for each of its
   two values. The closure has no side effects: it is the set ANTLR would compute.

2. **Adding a symbol to a scope.** ``Scope.add_symbol`` first deletes an equal symbol with
   ``symbol in declared_elements``, a scan of the whole list; each model visit adds the ~3,800
   predefined units to a fresh scope, so this is quadratic. Here each scope keeps the identities
   of its elements, and the scan runs only when it could find something: when the symbol itself is
   there, or when the symbol or an element has an ``__eq__`` of its own (NESTML's template and
   variadic type symbols). Otherwise ``in`` is False by definition and the scan is skipped.

3. **The order of convolutions.** ``ConvolutionsToBuffersTransformer.generate_kernel_buffers``
   collects (kernel, spike input) pairs in a ``set`` of AST objects, which hash by address: a neuron
   with two convolutions (aeif_cond_exp's excitatory and inhibitory conductances) got its state
   variables in either order from one run to the next, so the same source gave different C++ (and
   ccache missed). The set here iterates in the order the pairs appear in the source, one of the
   orders NESTML itself produces. (The child also runs with a fixed ``PYTHONHASHSEED`` for NESTML's
   sets of names.)
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

logger = logging.getLogger(__name__)
_installed: set[str] = set()


def install() -> None:
    """Apply all three, once per process; on a NESTML they were not checked against, apply none."""
    version = importlib.metadata.version("nestml")
    if not version.startswith("9."):
        logger.info("NESTML %s: its frontend runs without nestml-registry's speed-ups", version)
        return
    cache_lexer_start_states()
    index_scope_elements()
    order_kernel_buffers()


def cache_lexer_start_states() -> None:
    """Patch ``LexerATNSimulator.matchATN`` for NESTML's lexer; other lexers are left as they are."""
    if "lexer" in _installed:
        return
    from antlr4.atn.LexerATNSimulator import LexerATNSimulator
    from pynestml.generated.PyNestMLLexer import PyNestMLLexer

    if {name for name in vars(PyNestMLLexer) if name.endswith("_sempred")} != {"NEWLINE_sempred"}:
        return  # another grammar than the one this was checked against: change nothing
    original = LexerATNSimulator.matchATN
    starts: dict[tuple[int, bool], Any] = {}  # (id of the mode's DFA, at start of input) -> DFA state

    def match_atn(self: Any, input: Any) -> int:
        if not isinstance(self.recog, PyNestMLLexer):
            return original(self, input)
        dfa = self.decisionToDFA[self.mode]  # class-level, lives as long as the process
        key = (id(dfa), bool(self.recog.atStartOfInput()))
        state = starts.get(key)
        if state is None:
            closure = self.computeStartState(input, self.atn.modeToStartState[self.mode])
            closure.hasSemanticContext = False
            state = starts[key] = self.addDFAState(closure)
        return self.execATN(input, state)

    LexerATNSimulator.matchATN = match_atn
    _installed.add("lexer")


class _Index:
    """The identities of a scope's elements, valid while the list is exactly as ``add_symbol`` left it."""

    __slots__ = ("custom_eq", "elements", "ids", "last", "length")

    def __init__(self, elements: list) -> None:
        self.elements = elements
        self.ids = {id(e) for e in elements}
        self.custom_eq = sum(1 for e in elements if _has_custom_eq(e))
        self.length = len(elements)
        self.last = elements[-1] if elements else None

    def valid_for(self, elements: list) -> bool:
        # Scope's other methods (delete_symbol, add_scope, update_variable_symbol) change the length
        # or the last element; any change of either makes the index be rebuilt
        return (self.elements is elements and len(elements) == self.length
                and (not elements or elements[-1] is self.last))

    def appended(self, element: object) -> None:
        self.ids.add(id(element))
        self.custom_eq += _has_custom_eq(element)
        self.length += 1
        self.last = element

    def __copy__(self) -> None:  # a copied scope builds its own
        return None

    def __deepcopy__(self, memo: dict) -> None:
        return None


def _has_custom_eq(obj: object) -> bool:
    return type(obj).__eq__ is not object.__eq__


def index_scope_elements() -> None:
    """Patch ``Scope.add_symbol`` (delete any equal symbol, then append) to skip scans that cannot match."""
    if "scope" in _installed:
        return
    from pynestml.symbol_table.scope import Scope

    delete_symbol = Scope.delete_symbol

    def add_symbol(self: Any, symbol: Any) -> None:
        elements = self.declared_elements
        index = self.__dict__.get("_registry_index")
        if index is None or not index.valid_for(elements):
            index = self._registry_index = _Index(elements)
        if id(symbol) in index.ids or index.custom_eq or _has_custom_eq(symbol):
            delete_symbol(self, symbol)  # NESTML's own scan: it may find something
            elements.append(symbol)
            self._registry_index = _Index(elements)
            return
        elements.append(symbol)  # not there: "symbol in elements" is False, nothing to delete
        index.appended(symbol)

    Scope.add_symbol = add_symbol
    _installed.add("scope")


class InsertionOrderedSet(set):
    """A set that iterates in the order its elements were added (those added through ``add``;
    any added otherwise come after them, in the set's own order)."""

    def __init__(self, iterable: Any = ()) -> None:
        super().__init__()
        self._order: dict[Any, None] = {}
        for item in iterable:
            self.add(item)

    def add(self, item: Any) -> None:
        super().add(item)
        self._order.setdefault(item, None)

    def __iter__(self) -> Any:
        ordered = [item for item in self._order if item in self]
        rest = [item for item in set.__iter__(self) if item not in self._order]
        return iter(ordered + rest)


def order_kernel_buffers() -> None:
    """Give ``generate_kernel_buffers`` (the one ``set()`` in its module) an insertion-ordered set."""
    if "kernels" in _installed:
        return
    from pynestml.transformers import convolutions_to_buffers_transformer as module

    module.set = InsertionOrderedSet  # the module's global name shadows the builtin for its code only
    _installed.add("kernels")
