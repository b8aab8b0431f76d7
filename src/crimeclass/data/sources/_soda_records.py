"""SODA JSON records as raw Arrow batches: a page of the portal's answer, as validation wants it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.data._reasons import Reason
from crimeclass.data._schema import (
    COLUMN_NAMES,
    COLUMNS,
    RAW_SCHEMA,
    SODA_JSON_TYPES,
    SODA_NAMES,
    SODA_REQUIRED,
    soda_field_ignored,
)

__all__ = ["soda_batch"]

_BOOL_TEXT = {True: "true", False: "false"}


def _text(value: Any) -> str:
    """A JSON scalar of an accepted type as text: ``True`` -> ``'true'``, ``8`` -> ``'8'``."""
    if type(value) is bool:
        return _BOOL_TEXT[value]
    return value if type(value) is str else repr(value)


def _text_column(name: str, values: list[Any], problems: dict[int, list[str]]) -> pa.Array:
    """One column of a page as text; a value of a type the column does not take is nulled
    and its record noted as ``wrong_type``."""
    if name == "location":  # derived from latitude and longitude: only its type matters
        for i, v in enumerate(values):
            if v is not None and type(v) not in SODA_JSON_TYPES[name]:
                problems.setdefault(i, []).append(f"{name}:{Reason.WRONG_TYPE}")
        return pa.nulls(len(values), pa.string())
    try:  # the common cases at C speed: all text (numbers, dates), or all booleans
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    if bool in SODA_JSON_TYPES[name]:
        try:
            return pa.array(values, pa.bool_()).cast(pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
    accepted = SODA_JSON_TYPES[name]
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif type(v) in accepted:
            out.append(_text(v))
        else:
            problems.setdefault(i, []).append(f"{name}:{Reason.WRONG_TYPE}")
            out.append(None)
    return pa.array(out, pa.string())


#: A SODA record as Arrow expects it in the common case (numbers and dates as text,
#: the two flags as booleans); Location is derived, so it is not converted.
_SODA_STRUCT = pa.struct([pa.field(c.name, pa.bool_() if c.kind == "bool" else pa.string())
                          for c in COLUMNS if c.kind != "derived"])


def soda_batch(records: list[Any], first_offset: int, page: int, *,
               required: tuple[str, ...] = SODA_REQUIRED) -> pa.RecordBatch:
    """One page of SODA JSON records as a raw batch (:data:`RAW_SCHEMA`).

    ``_line`` is each record's ``$offset``. A record with a field of the wrong
    JSON type (that field nulled), without ``id`` or ``updated_on``, or with a
    field the dataset does not have, carries ``'field:reason;...'`` in
    ``_reject`` and, in ``_raw``, its page, offset and JSON: validation
    quarantines it, and the rest of the page loads. ``required``: the fields a
    record must carry (a score needs neither ``id`` nor ``updated_on``).

    >>> b = soda_batch([{"id": "1", "date": "2025-01-01T00:00:00.000",
    ...                  "updated_on": "2025-01-02T00:00:00.000", "arrest": True},
    ...                 {"id": {"x": 1}, "color": "red"}], first_offset=100, page=3)
    >>> b.column("arrest").to_pylist(), b.column("_line").to_pylist()
    (['true', None], [100, 101])
    >>> b.column("_reject").to_pylist()
    [None, 'color:unknown_field;id:wrong_type;updated_on:missing_field']
    >>> json.loads(b.column("_raw")[1].as_py())["offset"]
    101
    """
    n = len(records)
    problems: dict[int, list[str]] = {}
    dicts = records
    if not all(type(r) is dict for r in records):
        dicts = []
        for i, r in enumerate(records):
            if type(r) is dict:
                dicts.append(r)
            else:
                problems[i] = [f"record:{Reason.WRONG_TYPE}"]
                dicts.append({})
    keys: set[str] = set().union(*dicts) if dicts else set()
    unknown = {k for k in keys if k not in SODA_NAMES and not soda_field_ignored(k)}
    if unknown:
        for i, r in enumerate(dicts):
            for k in sorted(unknown.intersection(r)):
                problems.setdefault(i, []).append(f"{k}:{Reason.UNKNOWN_FIELD}")
    try:  # the common case at C speed: every value of the JSON type its column takes
        struct = pa.array(dicts, _SODA_STRUCT)
        arrays = [pa.nulls(n, pa.string()) if name == "location"
                  else struct.field(name).cast(pa.string()) for name in COLUMN_NAMES]
        missing = {name: struct.field(name).null_count for name in required}
        _text_column("location", [r.get("location") for r in dicts], problems)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # some value is not: find it, column by column
        arrays = []
        for name in COLUMN_NAMES:
            values = [r.get(name) for r in dicts]
            arrays.append(_text_column(name, values, problems))
        missing = dict.fromkeys(required, 1)
    for name, count in missing.items():
        if count:
            for i, r in enumerate(dicts):
                if r.get(name) is None and r:
                    problems.setdefault(i, []).append(f"{name}:{Reason.MISSING_FIELD}")
    rejects: list[str | None] = [None] * n
    raws: list[str | None] = [None] * n
    for i, found in problems.items():
        rejects[i] = ";".join(sorted(found))
        raws[i] = json.dumps({"page": page, "offset": first_offset + i, "record": records[i]},
                             default=str)
    arrays += [pa.array(np.arange(first_offset, first_offset + n, dtype=np.int64)),
               pa.array(rejects, pa.string()), pa.array(raws, pa.string())]
    return pa.RecordBatch.from_arrays(arrays, schema=RAW_SCHEMA)
