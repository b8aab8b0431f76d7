"""Names of Chicago's community areas and police districts, shipped as package data.

Both come from the City of Chicago Data Portal (see ``../shared/data/SOURCES.md``):

* ``community_areas.csv``: the 77 number -> name pairs of the portal table
  *Census Data - Selected socioeconomic indicators in Chicago, 2008 - 2012*
  (``chicago_census_community_areas.csv``, via github.com/h2oai/sparkling-water,
  Apache-2.0), spelled as the portal spells them.
* ``police_districts.csv``: district number -> name from the portal table
  *Police Stations* (``police_district_stations.csv``, via
  github.com/chicagocrimedata/datastore). The 22 districts of today; districts
  13, 21 and 23, merged into others in 2012-2013, have no row.

>>> community_areas().num_rows
77
>>> community_areas().slice(0, 1).to_pylist()
[{'community_area': 1, 'name': 'Rogers Park'}]
>>> police_districts().num_rows
22
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pyarrow as pa
import pyarrow.csv as pcsv

__all__ = ["LOOKUP_SOURCES", "community_areas", "police_districts"]

LOOKUP_SOURCES = {
    "community_areas": "City of Chicago Data Portal, 'Census Data - Selected socioeconomic "
    "indicators in Chicago, 2008 - 2012' (community area number and name)",
    "police_districts": "City of Chicago Data Portal, 'Police Stations' (district number "
    "and name)",
}


@cache
def _read(name: str, key: str) -> pa.Table:
    path = resources.files("crimeclass.explore").joinpath(name)
    with resources.as_file(path) as p:
        return pcsv.read_csv(p, convert_options=pcsv.ConvertOptions(
            column_types={key: pa.int32(), "name": pa.string()}))


def community_areas() -> pa.Table:
    """The 77 community areas: ``community_area`` (int32), ``name``."""
    return _read("community_areas.csv", "community_area")


def police_districts() -> pa.Table:
    """The police districts of today: ``district`` (int32), ``name``."""
    return _read("police_districts.csv", "district")
