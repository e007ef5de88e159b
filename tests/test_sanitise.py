"""What of a source reaches code generation: comments never, strings only when they are plain text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nestml_registry.compiler.sanitise import sanitise

MODEL = '''# leading comment */ code(); /*
model m_neuron: # on the model line
    parameters:
        # above tau, first
        # above tau, second
        tau ms = 10 ms # inline for tau
        E_L mV = -70 mV

        # not above anything: a blank line follows

        V_th mV = -55 mV
    update:
        println("V_m # is not a comment here {V_m}")
'''


def test_comments_are_removed_and_nothing_else_moves() -> None:
    s = sanitise(MODEL, "m.nestml")
    assert not s.diagnostics
    assert "#" not in s.text.replace('"V_m # is not a comment here {V_m}"', "")
    assert "code()" not in s.text and "inline for tau" not in s.text
    original, cleaned = MODEL.split("\n"), s.text.split("\n")
    assert len(original) == len(cleaned)
    for before, after in zip(original, cleaned, strict=True):
        assert before.startswith(after)  # only a line's end (its comment) goes
    assert cleaned[5] == "        tau ms = 10 ms"
    assert cleaned[12].endswith('println("V_m # is not a comment here {V_m}")')


def test_descriptions_are_nestmls_pre_and_inline_comments() -> None:
    s = sanitise(MODEL, "m.nestml")
    assert s.description(6) == "above tau, first above tau, second inline for tau"
    assert s.description(7) is None
    assert s.description(11) is None  # a blank line separates it from the comment


def test_a_backslash_in_a_string_is_refused_where_it_stands() -> None:
    text = 'model p_neuron:\n    update:\n        println("a\\{V_m}; std::system(\\"x\\"); //")\n'
    (d,) = sanitise(text, "p.nestml").diagnostics
    assert (d.file, d.line, d.column, d.code) == ("p.nestml", 3, 17, "UNSAFE_SOURCE")
    assert "backslash" in d.message and "remove it" in d.message


def test_strings_hold_printable_ascii_only() -> None:
    for content, word in (("tab\there", "'\\t'"), ("caf\u00e9", "U+00E9"), ("what??/", "trigraph"),
                          ("bidi\u202e", "U+202E")):
        (d,) = sanitise(f'model q_neuron:\n    update:\n        print("{content}")\n', "q.nestml").diagnostics
        assert word in d.message, (content, d.message)
    assert not sanitise('model q_neuron:\n    update:\n        print("fine: {V_m} ?! 100%")\n', "q").diagnostics


def test_an_unclosed_string_is_refused() -> None:
    (d,) = sanitise('model u_neuron:\n    update:\n        print("open # and a comment\n', "u").diagnostics
    assert (d.line, d.column) == (3, 15) and "not closed" in d.message


def test_a_comment_may_hold_anything() -> None:
    s = sanitise('model c_neuron: # "\\ caf\u00e9 \u202e */ /* ??/\n    state:\n        x real = 0\n', "c")
    assert not s.diagnostics and s.comments[1].startswith(' "\\ caf')


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab #"\\\n\t{}*/')), max_size=80))
def test_no_comment_text_survives_any_input(text: str) -> None:
    """Whatever the text: every line of the result is a prefix of the original line, and what was
    cut off is exactly the comment the result reports for that line (outside strings)."""
    s = sanitise(text, "f.nestml")
    before, after = text.split("\n"), s.text.split("\n")
    assert len(before) == len(after)
    for i, (b, a) in enumerate(zip(before, after, strict=True), start=1):
        assert b.startswith(a)
        if i in s.comments:
            assert b.endswith("#" + s.comments[i])
            assert a.strip() == b[: len(b) - len(s.comments[i]) - 1].strip()
        elif not s.diagnostics:
            assert a == b


def test_a_string_anywhere_but_as_prints_argument_is_refused_where_it_stands() -> None:
    from sympy_routes import string_routes

    for placement, text in string_routes().items():
        problems = [d for d in sanitise(text, "m.nestml").diagnostics if "string literal" in d.message]
        assert len(problems) == 1, (placement, problems)
        (d,) = problems
        line = text.split("\n")[d.line - 1]
        assert line[d.column - 1] == '"' and "__import__" in line, (placement, d.format())
        assert "only as the one argument of print or println" in d.message
    fine = 'model p_neuron:\n    update:\n        println("V_m = {V_m}")\n        print ( "x" )\n'
    assert not sanitise(fine, "p.nestml").diagnostics


def test_python_builtin_and_dunder_names_are_refused_where_they_stand() -> None:
    from sympy_routes import builtin_name_routes

    for placement, text in builtin_name_routes().items():
        problems = sanitise(text, "m.nestml").diagnostics
        assert problems, placement
        for d in problems:
            name = "__class__" if placement == "dunder" else d.message.split("'")[1]
            assert text.split("\n")[d.line - 1][d.column - 1:].startswith(name), (placement, d.format())
            assert "rename it" in d.message


def test_the_names_nestml_shares_with_python_are_exactly_nestmls_own() -> None:
    """The sanitiser's list of NESTML's names that are also Python builtins, against NESTML itself."""
    import builtins

    from pynestml.generated.PyNestMLLexer import PyNestMLLexer
    from pynestml.symbols.predefined_functions import PredefinedFunctions
    from pynestml.symbols.predefined_types import PredefinedTypes
    from pynestml.symbols.predefined_units import PredefinedUnits

    from nestml_registry.compiler.sanitise import NESTML_NAMES_THAT_ARE_PYTHON_BUILTINS

    PredefinedUnits.register_units()
    PredefinedTypes.register_types()
    PredefinedFunctions.register_functions()
    nestml = (set(PredefinedFunctions.get_function_symbols()) | set(PredefinedUnits.get_units())
              | {name.strip("'") for name in PyNestMLLexer.literalNames if name})
    assert nestml & set(dir(builtins)) <= NESTML_NAMES_THAT_ARE_PYTHON_BUILTINS


def test_no_shipped_model_is_refused(models_dir) -> None:
    for path in sorted(models_dir.rglob("*.nestml")):
        assert not sanitise(path.read_text(), path.name).diagnostics, path.name


def test_indentation_nestml_cannot_read_is_said_as_such_at_its_line() -> None:
    from conftest import DATA

    text = (DATA / "tiny_neuron.nestml").read_text()
    shifted = "\n".join(" " + line if line.strip() else line for line in text.split("\n"))  # the tutorial's paste
    (d,) = sanitise(shifted, "t.nestml").diagnostics
    assert d.line == text.split("\n").index("model tiny_neuron:") + 1 and "'model' line is indented by 1" in d.message
    uneven = text.replace("        emit_spike()\n", "      emit_spike()\n")
    (d,) = sanitise(uneven, "t.nestml").diagnostics
    assert "inconsistent indentation" in d.message and "column 7" in d.message
    assert uneven.split("\n")[d.line - 1].strip() == "emit_spike()"
    # continuation lines (a kernel list after ',', a '\\', brackets) are not blocks
    fine = text.replace("    equations:\n", "    equations:\n        kernel g = exp(-t / tau_m),\n"
                        "               h = (1\n                  + t)\n")
    assert not [x for x in sanitise(fine, "t.nestml").diagnostics if "indent" in x.message]
