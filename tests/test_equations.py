"""A model's equations as mathematics, without a server: every equations block NESTML ships reads and
renders as MathML; what the reader does not know (or a publisher's markup) is shown as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestml_registry.registry.model_text import block_of
from nestml_registry.service.api.web.equations import Unreadable, latex_lines, render_equations


def test_every_shipped_equations_block_renders_as_mathml(models_dir: Path) -> None:
    blocks = {p.stem: block_of(p.read_text(), "equations", None) for p in sorted(models_dir.glob("*/*.nestml"))}
    blocks = {name: b for name, b in blocks.items() if b.strip()}
    assert len(blocks) > 30
    for name, block in blocks.items():
        html = render_equations(block)
        assert html is not None and "<math" in html and "merror" not in html, name


@pytest.mark.parametrize(("line", "latex"), [
    ("V_m' = -(V_m - E_L) / tau_m", r"{V}_{m}' = \frac{-\left({V}_{m} - {E}_{L}\right)}{{\tau}_{m}}"),
    ("inline I pA = g * (V - E) + 1e-3 mV", r"I = g \cdot \left(V - E\right) + 1 \cdot 10^{-3}\,\mathrm{mV}"),
    ("kernel g' = g$ - g / tau, g$' = -g$ / tau", None),
    ("x' = V_m > 0 ? a**2 : sqrt(b)", r"x' = \begin{cases} {a}^{2} & \text{if } {V}_{m} > 0 \\ \sqrt{b} & "
                                      r"\text{otherwise} \end{cases}"),
])
def test_nestml_expressions_read_as_latex(line: str, latex: str | None) -> None:
    out = latex_lines(line)
    if latex is None:
        assert len(out) == 2 and out[1].startswith(r"{{g}^{\ast}}'")
    else:
        assert out == [latex]


@pytest.mark.parametrize("hostile", [
    r"V_m' = \input{/etc/passwd}",
    "V_m' = <script>alert(1)</script>",
    "V_m' = a +",
    "import os",
    "V_m' = (" * 200,
])
def test_what_the_reader_does_not_know_is_shown_as_written(hostile: str) -> None:
    assert render_equations(hostile) is None
    with pytest.raises(Unreadable):
        for line in hostile.splitlines():
            latex_lines(line)
