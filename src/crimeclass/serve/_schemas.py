"""The shapes of requests and answers (pydantic), for validation and the OpenAPI page.

An incident takes the fields of the portal's web API (the canonical snake_case names),
each of the JSON types the portal sends for it (:data:`~crimeclass.data._schema.
SODA_JSON_TYPES`: numbers as strings or numbers, flags as booleans or strings). A value
of another type is a 422 naming its path (``body.incidents.3.beat``); a field the
dataset does not have is the incident's own error, as in an ingest.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from typing_extensions import TypedDict

from crimeclass.data import COLUMNS
from crimeclass.data._schema import SODA_JSON_TYPES

__all__ = ["MAX_INCIDENTS", "Incident", "IncidentsRequest", "ReloadRequest", "ScoreRequest"]

#: Incidents in one request at most.
MAX_INCIDENTS = 10_000

_STRICT: dict[type, Any] = {str: StrictStr, int: StrictInt, float: StrictFloat,
                            bool: StrictBool, dict: dict[str, Any]}


def _field_type(name: str) -> Any:
    types = tuple(_STRICT[t] for t in SODA_JSON_TYPES[name])
    return Union[(*types, None)]  # noqa: UP007 - built from a tuple at run time


#: An incident: the portal's web API fields (all optional but the date). A TypedDict, not
#: a model: pydantic checks each field's type and hands the record on as the dict it was
#: (a model per incident, then dumped again, took more than twice as long).
Incident: Any = TypedDict(  # type: ignore[misc]
    "Incident", {c.name: Annotated[_field_type(c.name), Field(description=c.description)]
                 for c in COLUMNS}, total=False)
Incident.__pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[attr-defined]
Incident.__doc__ = "An incident: the portal's web API fields (all optional but the date)."


class ScoreRequest(BaseModel):
    """``POST /v1/score``: 1 to 10,000 incidents."""

    incidents: list[Incident] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=MAX_INCIDENTS)


class IncidentsRequest(BaseModel):
    """``POST /v1/incidents``: recorded incidents (with ``id`` and ``updated_on``)."""

    incidents: list[Incident] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=MAX_INCIDENTS)


class ReloadRequest(BaseModel):
    """``POST /v1/admin/reload``: the run to serve from now on."""

    model_config = ConfigDict(extra="forbid")
    run: str
    model: str | None = None

