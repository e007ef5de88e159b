"""The numbers a model's parameters and state start at, worked out from its NESTML syntax tree.

Runs in the code generation child only (:mod:`nestml_registry.compiler.codegen`), on a model NESTML has
parsed and checked. A default is often an expression (``V_reset mV = E_L - 5 mV``, ``tau_syn ms = 2 *
tau_m``, ``C_m pF = 1 nF``): it is evaluated here, in the declared unit, by walking NESTML's tree with
physical quantities (astropy's, which NESTML uses for its units). Nothing is evaluated as Python: only
numbers, units, the variables declared before, arithmetic, comparisons, ``a ? b : c`` and a handful of
mathematical functions have a value; anything else (a random draw, a call of a model's own function, an
unknown name) has none, and its value is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "exp": math.exp, "log": math.log, "ln": math.log, "log10": math.log10, "sqrt": math.sqrt, "sin": math.sin,
    "cos": math.cos, "tan": math.tan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "erf": math.erf, "erfc": math.erfc, "expm1": math.expm1,
}
_MAX_POWER = 64.0  # larger exponents give nothing a default needs, only overflow


class NoValue(Exception):
    """This expression has no value without running the model."""


def _units() -> Any:
    from astropy import units

    return units


def _unit_of(name: str) -> Any:
    from pynestml.symbols.predefined_units import PredefinedUnits

    if not PredefinedUnits.is_unit(name):
        raise NoValue(name)
    return PredefinedUnits.get_unit(name).get_unit()


def _unit_type(ut: Any) -> Any:
    """The unit a literal is written with (``250 pF``, ``1 mV/ms``, ``2 ms**-1``)."""
    symbol = ut.get_type_symbol()
    if getattr(symbol, "astropy_unit", None) is not None:
        return symbol.astropy_unit
    if ut.is_encapsulated:
        return _unit_type(ut.compound_unit)
    if ut.is_pow:
        return _unit_type(ut.base) ** float(ut.exponent)
    if ut.is_times or ut.is_div:
        lhs = ut.lhs if isinstance(ut.lhs, int) else _unit_type(ut.lhs)
        return lhs * _unit_type(ut.rhs) if ut.is_times else lhs / _unit_type(ut.rhs)
    if ut.unit is None:
        raise NoValue("unit")
    return _unit_of(ut.unit)


def _simple(expr: Any, env: dict[str, Any]) -> Any:
    u = _units()
    if expr.is_boolean_true or expr.is_boolean_false:
        return bool(expr.is_boolean_true)
    if expr.is_inf_literal:
        return math.inf * u.dimensionless_unscaled
    if expr.numeric_literal is not None:
        number = float(expr.numeric_literal) * u.dimensionless_unscaled
        if expr.unitType is not None:
            return number * _unit_type(expr.unitType)
        return number * _unit_of(expr.variable.get_name()) if expr.variable is not None else number
    if expr.function_call is not None:
        call = expr.function_call
        fn = _FUNCTIONS.get(call.get_name())
        args = call.get_args()
        if fn is None or len(args) != 1:
            raise NoValue(call.get_name())
        arg = _value(args[0], env)
        return fn(float(_quantity(arg).to(u.dimensionless_unscaled).value)) * u.dimensionless_unscaled
    if expr.variable is not None:
        name = expr.variable.get_complete_name()
        if name in env:
            if env[name] is None:
                raise NoValue(name)
            return env[name]
        return 1.0 * _unit_of(name)
    raise NoValue("literal")


def _quantity(value: Any) -> Any:
    if isinstance(value, bool):
        raise NoValue("boolean")
    return value


def _arithmetic(op: Any, lhs: Any, rhs: Any) -> Any:
    a, b = _quantity(lhs), _quantity(rhs)
    if op.is_plus_op:
        return a + b
    if op.is_minus_op:
        return a - b
    if op.is_times_op:
        return a * b
    if op.is_div_op:
        return a / b
    if op.is_pow_op:
        exponent = float(b.to(_units().dimensionless_unscaled).value)
        if abs(exponent) > _MAX_POWER:
            raise NoValue("power")
        return a ** exponent
    if op.is_modulo_op:
        return a % b
    raise NoValue("operator")


def _compare(op: Any, lhs: Any, rhs: Any) -> bool:
    a, b = _quantity(lhs), _quantity(rhs)
    checks = (("is_lt", a < b), ("is_le", a <= b), ("is_eq", a == b), ("is_ne", a != b), ("is_ne2", a != b),
              ("is_ge", a >= b), ("is_gt", a > b))
    for flag, result in checks:
        if getattr(op, flag, False):
            return bool(result)
    raise NoValue("comparison")


def _binary(expr: Any, env: dict[str, Any]) -> Any:
    op = expr.binary_operator
    lhs, rhs = _value(expr.lhs, env), _value(expr.rhs, env)
    kind = type(op).__name__
    if kind == "ASTArithmeticOperator":
        return _arithmetic(op, lhs, rhs)
    if kind == "ASTComparisonOperator":
        return _compare(op, lhs, rhs)
    if kind == "ASTLogicalOperator" and isinstance(lhs, bool) and isinstance(rhs, bool):
        return (lhs and rhs) if op.is_logical_and else (lhs or rhs)
    raise NoValue(kind)


def _value(expr: Any, env: dict[str, Any]) -> Any:
    if type(expr).__name__ == "ASTSimpleExpression":
        return _simple(expr, env)
    if expr.condition is not None:
        chosen = _value(expr.condition, env)
        if not isinstance(chosen, bool):
            raise NoValue("condition")
        return _value(expr.if_true if chosen else expr.if_not, env)
    if expr.binary_operator is not None:
        return _binary(expr, env)
    inner = _value(expr.expression, env)
    if expr.is_logical_not:
        if not isinstance(inner, bool):
            raise NoValue("not")
        return not inner
    unary = expr.unary_operator
    if unary is not None and unary.is_unary_minus:
        return -_quantity(inner)
    if unary is not None and unary.is_unary_tilde:
        raise NoValue("~")
    return inner


def _in_declared_unit(value: Any, decl: Any) -> float | bool | None:
    """The value as a number in the declaration's unit (``mV`` for ``V_m mV``), or as a truth value."""
    if isinstance(value, bool):
        return value
    u = _units()
    symbol = decl.get_data_type().get_type_symbol()
    unit = getattr(symbol, "astropy_unit", None)
    try:
        number = float(value.to(unit if unit is not None else u.dimensionless_unscaled).value)
    except (u.UnitConversionError, u.UnitsError, TypeError, ValueError):
        return None
    if math.isnan(number):
        return None
    number = float(f"{number:.12g}")  # 1 nF in pF is 1000.0000000000001 in binary: 1000, as written
    if type(symbol).__name__ == "IntegerTypeSymbol" and math.isfinite(number) and number == int(number):
        return int(number)
    return number


def values_of(blocks: list[Any], env: dict[str, Any] | None = None) -> dict[str, float | bool | str | None]:
    """Each declared variable's starting value in its declared unit (``None``: none without running the
    model), in declaration order, so a later default may use an earlier one. ``inf`` is ``"inf"`` (JSON)."""
    env = {} if env is None else env
    out: dict[str, float | bool | str | None] = {}
    for block in blocks:
        for decl in block.get_declarations():
            expr = decl.get_expression() if decl.has_expression() else None
            for var in decl.get_variables():
                name = var.get_complete_name()
                try:
                    value = _value(expr, env) if expr is not None else None
                except (NoValue, ArithmeticError, ValueError, TypeError, AttributeError):
                    value = None
                env[name] = value
                number = _in_declared_unit(value, decl) if value is not None else None
                out[name] = str(number) if isinstance(number, float) and math.isinf(number) else number
    return out
