"""Model text that reaches SymPy's parser, in every placement NESTML hands to it: each model puts a
Python payload where it would run if text were evaluated (a string literal passed to a user function)
or names a user function after a Python builtin (``id`` would be replaced by the address of a SymPy
object). Shared by the sanitiser's fast tests and the code generation child's slow ones."""

from __future__ import annotations

# what the payload prints when it runs (PWNED_<tag>) is not in the text itself, so NESTML quoting the text in
# a message is not mistaken for the payload running
PAYLOAD = "__import__('sys').stdout.write('PWN' + 'ED_{tag}')"

_MODEL = """model {name}_neuron:
    state:
        V_m mV = -70 mV
{state}
    parameters:
        tau_m ms = 10 ms
{parameters}
    internals:
        h ms = resolution()
{internals}
    function f(s string) real:
        return 0
{functions}
    equations:
{equations}
    input:
        spikes <- spike
        I_stim pA <- continuous

    output:
        spike

    update:
        integrate_odes()
{update}
"""

_ODE = "        V_m' = -V_m / tau_m"


def _model(name: str, **parts: str) -> str:
    fields = {k: "" for k in ("state", "parameters", "internals", "functions", "update")}
    fields["equations"] = _ODE
    fields.update(parts)
    return _MODEL.format(name=name, **fields)


def _s(tag: str) -> str:
    return '"' + PAYLOAD.format(tag=tag) + '"'


def string_routes() -> dict[str, str]:
    """placement -> model text whose string literal would be evaluated as Python."""
    return {
        "ode": _model("ode", equations=f"{_ODE} + f({_s('ode')}) * 1 mV / 1 ms"),
        "inline": _model("inline", equations=f"        inline g real = f({_s('inline')})\n{_ODE} + g * 1 mV / 1 ms"),
        "kernel": _model("kernel", equations=f"        kernel K = exp(-t / tau_m) * f({_s('kernel')})\n"
                                             f"{_ODE} + convolve(K, spikes) * 1 mV"),
        "parameter": _model("parameter", parameters=f"        a real = f({_s('parameter')})",
                            equations=f"{_ODE} + a * 1 mV / 1 ms"),
        "state": _model("state", state=f"        x real = f({_s('state')})",
                        equations=f"{_ODE}\n        x' = -x / tau_m"),
        "internals": _model("internals", internals=f"        b real = f({_s('internals')})",
                            equations=f"{_ODE} + b * 1 mV / 1 ms"),
        "update": _model("update", update=f"        V_m += f({_s('update')}) * 1 mV"),
        "function": _model("function", functions=f"    function g() real:\n        return f({_s('function')})\n",
                           equations=f"{_ODE} + g() * 1 mV / 1 ms"),
        "string-default": _model("stringdefault", parameters=f"        label string = {_s('stringdefault')}"),
    }


def builtin_name_routes() -> dict[str, str]:
    """placement -> model text in which a name of the model is one of Python's builtins."""
    return {
        "function": _model("idfunc", functions="    function id(x real) real:\n        return x\n",
                           equations=f"{_ODE} + id(1) * 1 mV / 1 ms"),
        "parameter": _model("evalparam", parameters="        eval real = 2",
                            equations=f"{_ODE} * eval"),
        "state": _model("openstate", state="        open real = 1",
                        equations=f"{_ODE}\n        open' = -open / tau_m"),
        "dunder": _model("dunder", parameters="        __class__ real = 2",
                         equations=f"{_ODE} * __class__"),
    }
