"""Column expressions of crimeclass's SQL evaluated by Arrow, in memory, without a database.

For a few rows at a time (a scoring request) DuckDB spends far more time binding and
optimizing a statement of many expressions than running it. :func:`compile_expression`
compiles one DuckDB expression once (parsed by sqlglot, as :func:`to_spark_sql` parses
it for Spark) into a function of Arrow columns, evaluated with ``pyarrow.compute`` and
SQL's rules: nulls propagate, a comparison with null is null, ``CASE`` takes a null
condition as false, ``/`` divides as doubles.

The expressions it knows are those the feature catalog writes (columns, literals,
arithmetic, comparisons, ``AND``/``NOT``/``IS NULL``, ``CASE``, ``CAST``, ``||``,
``floor``, ``sin``, ``cos``, ``pi``, ``regexp_replace``, the parts of a timestamp and
``date_diff``); any other is refused with :class:`EngineError` when compiled, so that an
expression is either evaluated as DuckDB evaluates it or not at all (tests compare the two
on real rows).

>>> import pyarrow as pa
>>> f = compile_expression("CASE WHEN n > 0 THEN k / n END")
>>> f({"n": pa.array([2, 0, None]), "k": pa.array([1, 0, 1])}).to_pylist()
[0.5, None, None]
"""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crimeclass.engines._errors import EngineError

__all__ = ["Columns", "Evaluator", "compile_expression"]

#: What an expression reads: the columns by name (arrays of one length).
Columns = Mapping[str, Any]
#: A compiled expression: its value (an array, or a scalar where it reads no column).
Evaluator = Callable[[Columns], Any]

_CASTS: dict[str, pa.DataType] = {
    "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "BIGINT": pa.int64(),
    "INT": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}
#: The names sqlglot writes for some of them.
_ALIASES = {"REAL": "FLOAT", "TEXT": "VARCHAR", "INTEGER": "INT"}


@functools.lru_cache(maxsize=4096)
def compile_expression(sql: str) -> Evaluator:
    """A function of the columns that evaluates the DuckDB expression ``sql``.

    Raises
    ------
    EngineError
        Where ``sql`` uses what the Arrow engine does not evaluate.
    """
    import sqlglot

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise EngineError("arrow", f"cannot parse the expression {sql!r}: {e}",
                          setting="expression", value=sql) from None
    return _compile(tree, sql)


def _compile(node: Any, sql: str) -> Evaluator:
    from sqlglot import exp

    def sub(child: Any) -> Evaluator:
        return _compile(child, sql)

    if isinstance(node, exp.Paren):
        return sub(node.this)
    if isinstance(node, exp.Column):
        return _column(node.name, sql)
    if isinstance(node, exp.Literal):
        value = node.this if node.is_string else _number(node.this)
        scalar = pa.scalar(value)
        return lambda cols: scalar
    if isinstance(node, exp.Null):
        return lambda cols: pa.scalar(None)
    if isinstance(node, exp.Pi):
        return lambda cols: pa.scalar(math.pi)
    if isinstance(node, exp.Cast):
        name = _type_name(node.to, sql)
        literal = _decimal(node.this)
        if literal is not None and name in ("BIGINT", "INT"):
            # a literal such as 2.5 is a DECIMAL to DuckDB, rounded half away from zero
            whole = int(literal.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
            return lambda cols: pa.scalar(whole, _CASTS[name])
        return _cast(sub(node.this), name, sql)
    if isinstance(node, exp.Case):
        return _case([(sub(i.this), sub(i.args["true"])) for i in node.args["ifs"]],
                     sub(node.args["default"]) if node.args.get("default") else None)
    binary = _BINARY.get(type(node).__name__)
    if binary is not None:
        return _binary(binary, sub(node.this), sub(node.expression))
    unary = _UNARY.get(type(node).__name__)
    if unary is not None:
        return _unary(unary, sub(node.this))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        inner = sub(node.this)
        return lambda cols: pc.is_null(inner(cols))
    if isinstance(node, exp.DateDiff) and node.unit and node.unit.name.upper() == "DAY":
        end, start = sub(node.this), sub(node.expression)
        return lambda cols: pc.days_between(_date(start(cols)), _date(end(cols)))
    if (isinstance(node, exp.DateDiff) and node.unit
            and node.unit.name.upper() == "MICROSECOND"):
        end, start = sub(node.this), sub(node.expression)
        return lambda cols: pc.microseconds_between(_timestamp(start(cols)),
                                                    _timestamp(end(cols)))
    if isinstance(node, exp.RegexpReplace) and _plain_regexp(node):
        value, pattern = sub(node.this), node.expression.this
        replacement = node.args["replacement"].this
        return lambda cols: pc.replace_substring_regex(
            value(cols), pattern=pattern, replacement=replacement, max_replacements=1)
    raise EngineError("arrow", f"the expression {sql!r} uses {node.sql(dialect='duckdb')!r}, "
                      "which the Arrow engine does not evaluate", setting="expression",
                      value=sql)


def _column(name: str, sql: str) -> Evaluator:
    def run(cols: Columns) -> Any:
        try:
            return cols[name]
        except KeyError:
            raise EngineError("arrow", f"the expression {sql!r} reads the column {name!r}, "
                              "which the rows lack", setting="column", value=name) from None
    return run


def _decimal(node: Any) -> decimal.Decimal | None:
    """The value of a literal with a decimal point (``2.5``, ``-2.5``), else None."""
    from sqlglot import exp

    sign = 1
    while isinstance(node, exp.Neg | exp.Paren):
        sign = -sign if isinstance(node, exp.Neg) else sign
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
        return sign * decimal.Decimal(node.this)
    return None


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _type_name(to: Any, sql: str) -> str:
    name = to.sql(dialect="duckdb").upper()
    name = _ALIASES.get(name, name)
    if name not in _CASTS:
        raise EngineError("arrow", f"the expression {sql!r} casts to {name}, which the Arrow "
                          "engine does not evaluate", setting="expression", value=sql)
    return name


def _plain_regexp(node: Any) -> bool:
    """``regexp_replace(x, 'literal pattern', 'literal')``: the first match replaced."""
    from sqlglot import exp

    return (isinstance(node.expression, exp.Literal) and node.expression.is_string
            and isinstance(node.args.get("replacement"), exp.Literal)
            and not node.args.get("modifiers"))


def _cast(inner: Evaluator, name: str, sql: str) -> Evaluator:
    target = _CASTS[name]

    def run(cols: Columns) -> Any:
        value = inner(cols)
        if name == "DATE" and isinstance(value, pa.StringScalar):
            return pa.scalar(value.as_py(), pa.string()).cast(pa.date32())
        if name == "DATE":
            return _date(value)
        if name == "TIMESTAMP" and isinstance(value, pa.StringScalar):
            return pa.scalar(value.as_py(), pa.string()).cast(target)
        if name == "BIGINT" and pa.types.is_floating(value.type):
            # DuckDB rounds a double to the nearest integer, halves to the even one
            value = pc.round(value, round_mode="half_to_even")
            return pc.cast(value, target, safe=False)
        if name == "VARCHAR" and pa.types.is_floating(value.type):
            raise EngineError("arrow", f"the expression {sql!r} writes a double as text, "
                              "which the Arrow engine does not evaluate as DuckDB does",
                              setting="expression", value=sql)
        return _as(value, target)

    return run


def _timestamp(value: Any) -> Any:
    """A timestamp (or text) as a timestamp in microseconds, as DuckDB's TIMESTAMP."""
    return value if value.type == pa.timestamp("us") else pc.cast(value, pa.timestamp("us"))


def _date(value: Any) -> Any:
    """A timestamp (or date) as a date: its day, as ``CAST(x AS DATE)``."""
    if pa.types.is_date32(value.type):
        return value
    return pc.cast(pc.floor_temporal(value, unit="day"), pa.date32())


def _case(branches: list[tuple[Evaluator, Evaluator]], default: Evaluator | None
          ) -> Evaluator:
    """``CASE WHEN c1 THEN v1 ... ELSE d END``, the first true condition's value; a null
    condition is not true; without ``ELSE``, null."""

    def run(cols: Columns) -> Any:
        values = [(c(cols), v(cols)) for c, v in branches]
        out = default(cols) if default is not None else None
        kind = _common_type([v for _, v in values] + ([out] if out is not None else []))
        result = pa.scalar(None, kind) if out is None else _as(out, kind)
        for cond, value in reversed(values):
            result = pc.if_else(pc.fill_null(cond, False), _as(value, kind), result)
        return result

    return run


def _common_type(values: list[Any]) -> pa.DataType:
    """The type of a CASE: its values' type, a number's widest (as DuckDB's binder)."""
    kinds = [v.type for v in values if not pa.types.is_null(v.type)]
    if not kinds:
        return pa.null()
    if all(pa.types.is_integer(k) for k in kinds):
        return pa.int64()
    if all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds):
        return pa.float64()
    return kinds[0]


def _as(value: Any, kind: pa.DataType) -> Any:
    """``value`` cast to ``kind``, unless it has that type."""
    return value if value.type == kind else pc.cast(value, kind)


def _divide(a: Any, b: Any) -> Any:
    """``/``: doubles divided, as DuckDB divides (IEEE: a zero divisor gives an infinity
    or NaN)."""
    return pc.divide(_as(a, pa.float64()), _as(b, pa.float64()))


def _modulo(a: Any, b: Any) -> Any:
    """``%`` of integers: the remainder with the sign of the dividend, as in DuckDB."""
    a, b = _as(a, pa.int64()), _as(b, pa.int64())
    return pc.subtract(a, pc.multiply(b, _truncated_quotient(a, b)))


def _truncated_quotient(a: Any, b: Any) -> Any:
    q = pc.divide(pc.abs(a), pc.abs(b))  # integers: rounded toward zero
    negative = pc.not_equal(pc.less(a, 0), pc.less(b, 0))
    return pc.if_else(negative, pc.negate(q), q)


def _concat(a: Any, b: Any) -> Any:
    return pc.binary_join_element_wise(a, b, "")


def _numeric(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """An arithmetic operator on two numbers, in doubles where either is a double."""
    def run(a: Any, b: Any) -> Any:
        if pa.types.is_floating(a.type) or pa.types.is_floating(b.type):
            a, b = _as(a, pa.float64()), _as(b, pa.float64())
        return fn(a, b)
    return run


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": _numeric(pc.add_checked), "Sub": _numeric(pc.subtract_checked),
    "Mul": _numeric(pc.multiply_checked), "Div": _divide, "Mod": _modulo,
    "EQ": pc.equal, "NEQ": pc.not_equal, "GT": pc.greater, "GTE": pc.greater_equal,
    "LT": pc.less, "LTE": pc.less_equal, "And": pc.and_kleene, "Or": pc.or_kleene,
    "DPipe": _concat,
}

_UNARY: dict[str, Callable[[Any], Any]] = {
    "Not": pc.invert, "Neg": pc.negate_checked,
    "Floor": lambda v: pc.floor(_as(v, pa.float64())),
    "Sin": lambda v: pc.sin(_as(v, pa.float64())),
    "Cos": lambda v: pc.cos(_as(v, pa.float64())),
    "Hour": pc.hour, "Minute": pc.minute, "Month": pc.month, "Day": pc.day,
    "DayOfYear": pc.day_of_year,
}


def _binary(fn: Callable[[Any, Any], Any], a: Evaluator, b: Evaluator) -> Evaluator:
    return lambda cols: fn(a(cols), b(cols))


def _unary(fn: Callable[[Any], Any], a: Evaluator) -> Evaluator:
    return lambda cols: fn(a(cols))
