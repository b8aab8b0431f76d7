"""The label: is an incident an index offense (FBI Part I crime)?

The CPD's IUCR code table says, for each IUCR code, whether it is an index
offense (INDEX CODE ``I``) or not (``N``). A row is labeled by the first of
three routes that applies (see ``docs/labels.md``):

1. ``iucr``: its IUCR code is in the table with index code I or N;
2. ``description``: its primary and secondary descriptions match table entries
   that all agree on the index code;
3. ``fbi_code``: it has an FBI code; index when the code is Part I
   (01A, 02, 03, 04A, 04B, 05, 06, 07, 09).

Otherwise the label stays unknown (null): never guessed.

>>> table = iucr_table()
>>> table.num_rows > 400
True
>>> sorted(FBI_PART_I)[:3]
['01A', '02', '03']
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources

import pyarrow as pa
import pyarrow.csv as pcsv

__all__ = [
    "FBI_PART_I", "IUCR_TABLE_SOURCES", "LabelRoute", "iucr_table", "label_sql", "lookup_sql",
]

#: FBI Uniform Crime Reporting Part I offense codes, as the CPD writes them.
FBI_PART_I = frozenset({"01A", "02", "03", "04A", "04B", "05", "06", "07", "09"})

#: Where the shipped table comes from (both in ../shared/data, see docs/labels.md).
IUCR_TABLE_SOURCES = {
    "iucr_codes_api_snake_case.csv": "Chicago Data Portal, 'Chicago Police Department - "
    "Illinois Uniform Crime Reporting (IUCR) Codes' (c7ck-438e), API export, 2026; "
    "via github.com/peterskipper/chicago-crime-mcp",
    "iucr_codes.csv": "the same portal table, CSV export of 2024-01-12 (leading zeros "
    "dropped by the export, restored here); via github.com/Ozxahmed/dec-proj1-chicago-crime",
}

# Renamed primary types: the table uses today's spelling.
_PRIMARY_ALIASES = {
    "CRIM SEXUAL ASSAULT": "CRIMINAL SEXUAL ASSAULT",
    "NON - CRIMINAL": "NON-CRIMINAL",
    "NON-CRIMINAL (SUBJECT SPECIFIED)": "NON-CRIMINAL",
}


class LabelRoute(StrEnum):
    """How a row's label was found."""

    IUCR = "iucr"
    DESCRIPTION = "description"
    FBI_CODE = "fbi_code"
    UNKNOWN = "unknown"


def iucr_table() -> pa.Table:
    """The IUCR code table shipped with crimeclass, codes zero-padded to 4 characters.

    Columns: ``iucr``, ``primary_description``, ``secondary_description``,
    ``index_code`` (I, N, or D for one retired code), ``active``, ``source``.
    """
    path = resources.files("crimeclass.data").joinpath("iucr_codes.csv")
    with resources.as_file(path) as p:
        return pcsv.read_csv(
            p,
            convert_options=pcsv.ConvertOptions(
                column_types={"iucr": pa.string(), "index_code": pa.string(),
                              "active": pa.bool_()}
            ),
        )


def _norm(expr: str) -> str:
    """SQL normalising a description: upper case, single spaces, known renamings."""
    base = f"regexp_replace(upper(trim({expr})), '\\s+', ' ', 'g')"
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _PRIMARY_ALIASES.items())
    return f"CASE {base} {cases} ELSE {base} END"


def lookup_sql(table: str = "_iucr_codes") -> dict[str, str]:
    """SELECTs of the two lookups that :func:`label_sql` joins, by their relation names.

    ``_label_codes`` maps an IUCR code to its index flag; ``_label_descriptions``
    maps normalised (primary, secondary) descriptions to the index flag that all
    their codes share. ``table`` names a relation holding :func:`iucr_table`.
    """
    return {
        "_label_codes": f"SELECT iucr, index_code = 'I' AS is_index FROM {table} "
                        "WHERE index_code IN ('I', 'N')",
        "_label_descriptions": f"""
            SELECT {_norm("primary_description")} AS p, {_norm("secondary_description")} AS s,
                   bool_and(index_code = 'I') AS is_index
            FROM {table} WHERE index_code IN ('I', 'N')
            GROUP BY ALL HAVING count(DISTINCT index_code) = 1""",
    }


def label_sql(relation: str) -> str:
    """SELECT of ``relation``'s rows with ``is_index`` and ``label_source`` added.

    Joins the relations ``_label_codes`` and ``_label_descriptions`` of :func:`lookup_sql`.
    """
    part_one = ", ".join(f"'{c}'" for c in sorted(FBI_PART_I))
    return f"""
SELECT r.*,
    CASE WHEN c.is_index IS NOT NULL THEN c.is_index
         WHEN d.is_index IS NOT NULL THEN d.is_index
         WHEN r.fbi_code IS NOT NULL THEN r.fbi_code IN ({part_one})
    END AS is_index,
    CASE WHEN c.is_index IS NOT NULL THEN '{LabelRoute.IUCR}'
         WHEN d.is_index IS NOT NULL THEN '{LabelRoute.DESCRIPTION}'
         WHEN r.fbi_code IS NOT NULL THEN '{LabelRoute.FBI_CODE}'
         ELSE '{LabelRoute.UNKNOWN}'
    END AS label_source
FROM {relation} AS r
LEFT JOIN _label_codes AS c ON c.iucr = r.iucr
LEFT JOIN _label_descriptions AS d  -- normalise only the rows the codes leave unlabeled
    ON d.p = CASE WHEN c.is_index IS NULL THEN {_norm("r.primary_type")} END
   AND d.s = CASE WHEN c.is_index IS NULL THEN {_norm("r.description")} END
"""
