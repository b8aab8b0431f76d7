"""The closed sets of reasons why a row is quarantined or flagged."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Flag", "Reason"]


class Reason(StrEnum):
    """Why a row was quarantined instead of loaded. Every quarantined row has one."""

    WRONG_FIELD_COUNT = "wrong_field_count"
    MISSING_DATE = "missing_date"
    UNPARSEABLE_DATE = "unparseable_date"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    NOT_A_NUMBER = "not_a_number"
    NOT_A_WHOLE_NUMBER = "not_a_whole_number"
    BAD_BOOLEAN = "bad_boolean"
    BAD_CODE = "bad_code"
    YEAR_MISMATCH = "year_mismatch"
    DUPLICATE_ID = "duplicate_id"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"

    @property
    def description(self) -> str:
        """One sentence for users."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Reason.WRONG_FIELD_COUNT: "the line has more or fewer fields than the header",
    Reason.MISSING_DATE: "Date is empty",
    Reason.UNPARSEABLE_DATE: "a timestamp is in none of the known formats",
    Reason.DATE_OUT_OF_RANGE: "Date is before 1990 or after the time of ingest",
    Reason.NOT_A_NUMBER: "a numeric field holds text that is not a number",
    Reason.NOT_A_WHOLE_NUMBER: "an integer field holds a fraction",
    Reason.BAD_BOOLEAN: "Arrest or Domestic is not true/false, True/False, Y/N or 1/0",
    Reason.BAD_CODE: "IUCR or FBI Code is not of the form 0486 / 08B",
    Reason.YEAR_MISMATCH: "Year differs from the year of Date",
    Reason.DUPLICATE_ID: "another row of the same file has this ID and is newer",
    Reason.WRONG_TYPE: "a field of a web API record has the wrong JSON type (e.g. an object "
                       "for a number)",
    Reason.MISSING_FIELD: "a web API record lacks a field every record has (id, updated_on)",
    Reason.UNKNOWN_FIELD: "a web API record has a field that is not in the dataset's schema",
}


class Flag(StrEnum):
    """A fault that is repaired, not quarantined: the value is nulled and the row flagged."""

    COORDINATES_OUTSIDE_CHICAGO = "coordinates_outside_chicago"
    BEAT_OUT_OF_RANGE = "beat_out_of_range"
    DISTRICT_OUT_OF_RANGE = "district_out_of_range"
    WARD_OUT_OF_RANGE = "ward_out_of_range"
    COMMUNITY_AREA_OUT_OF_RANGE = "community_area_out_of_range"
