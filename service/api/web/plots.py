"""The model page's characterisation plots, drawn from the API's characterisation document (the same
numbers the JSON answers with) as one SVG: the f-I curve beside the previous version's, the step
responses and the PSPs. Text is drawn as paths, so nothing of a model's names is markup in the file."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nestml_registry.service.api import characterisation_schemas

_LOCK = threading.Lock()  # pyplot's state is global
_CACHE: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_SIZE = 64


def characterisation_svg(doc: characterisation_schemas.Characterisation) -> bytes:
    """The plots of a finished characterisation (cached by model, version and when it finished)."""
    key = (doc.model, doc.version, doc.finished_at, doc.previous.version if doc.previous else None)
    return _cached(key, lambda: _draw(doc))


def check_svg(doc: characterisation_schemas.Characterisation) -> bytes:
    """A synapse check's curves (its STDP window, or its short-term plasticity against frequency) beside
    its NEST counterpart's (cached as the characterisation plots are)."""
    curves = doc.check.curves if doc.check else []
    return _cached(("check", doc.model, doc.version, doc.finished_at),
                   lambda: _draw_curves(curves, doc.check.against if doc.check else None))


def _cached(key: tuple, draw: Callable[[], bytes]) -> bytes:
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = draw()
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return _CACHE[key]


@contextmanager
def _figure(columns: int, width: float) -> Iterator[tuple[Any, list[Any]]]:
    """A row of ``columns`` panels in the plots' style (text as paths, no date), closed afterwards."""
    import matplotlib

    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "nestml-registry", "font.size": 9}):
        fig, axes = plt.subplots(1, columns, figsize=(width, 3.4), squeeze=False)
        try:
            yield fig, list(axes[0])
        finally:
            plt.close(fig)


def _svg(fig: Any) -> bytes:
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _draw_curves(curves: list[characterisation_schemas.CheckCurve], against: str | None) -> bytes:
    with _figure(max(1, len(curves)), 4.5 * max(1, len(curves))) as (fig, axes):
        for ax, c in zip(axes, curves, strict=False):
            ax.set_title(c.title)
            ax.set_xlabel(c.x_label)
            ax.set_ylabel(c.y_label)
            ax.axhline(0 if c.title == "STDP window" else 1, color="#cccccc", linewidth=0.6)
            ax.plot(c.x, [float("nan") if v is None else v for v in c.reference], "s-", color="#999999",
                    markersize=5, label=against or "NEST")
            ax.plot(c.x, [float("nan") if v is None else v for v in c.model], "o--", color="#1f5fa8",
                    markersize=3, label="this version")
            ax.legend(loc="best", frameon=False, fontsize=7)
        return _svg(fig)


def _draw(doc: characterisation_schemas.Characterisation) -> bytes:
    with _figure(3, 12) as (fig, (fi, steps, psp)):
        _fi_panel(fi, doc)
        _trace_panel(steps, [t for t in doc.traces if t.kind == "step"], "Step responses",
                     "current from 100 to 600 ms")
        _trace_panel(psp, [t for t in doc.traces if t.kind == "psp"], "PSP", "one input spike at 10 ms")
        return _svg(fig)


def _fi_panel(ax, doc: characterisation_schemas.Characterisation) -> None:
    ax.set_title("f-I curve")
    ax.set_xlabel("current (pA)")
    ax.set_ylabel("rate (Hz)")
    if doc.previous and doc.previous.fi_curve:
        ax.plot([p.current_pA for p in doc.previous.fi_curve], [p.rate_hz for p in doc.previous.fi_curve],
                "o--", color="#999999", markersize=3, label=f"version {doc.previous.version}")
    ax.plot([p.current_pA for p in doc.fi_curve], [p.rate_hz for p in doc.fi_curve], "o-", color="#1f5fa8",
            markersize=3, label=f"version {doc.version}")
    if doc.rheobase_pA:
        ax.axvline(doc.rheobase_pA, color="#c0392b", linewidth=0.8, linestyle=":", label="rheobase")
    ax.legend(loc="upper left", frameon=False)


def _trace_panel(ax, traces: list[characterisation_schemas.Trace], title: str, note: str) -> None:
    ax.set_title(f"{title} ({note})")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V_m (mV)")
    for t in traces:
        ax.plot([t.t0_ms + i * t.dt_ms for i in range(len(t.V_m))], t.V_m, linewidth=0.8, label=t.label)
    if traces:
        ax.legend(loc="best", frameon=False, fontsize=7)
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
