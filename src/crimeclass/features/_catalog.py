"""The features known when an incident is reported, each defined once.

A :class:`Feature` is a SQL expression in DuckDB's dialect over one incident
(and, for the *history* features, over the incidents strictly before it), with
its kind, its group, the store columns it reads and what it means. The same
expressions compile to Spark SQL (:func:`crimeclass.features.to_spark_sql`).
What is learned from data (rare-category grouping, one-hot, target encoding)
is not here: it lives in scikit-learn transformers that fit inside each
training fold (:mod:`crimeclass.features._encoders`).

>>> spec = FeatureSpec()
>>> names = [f.name for f in feature_catalog(spec)]
>>> names[:4]
['hour', 'minute', 'weekday', 'month']
>>> "primary_type" in names or "arrest" in names
False
>>> [f.name for f in feature_catalog(FeatureSpec(allow_arrest=True))][-1]
'arrest'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from crimeclass.features._errors import FeaturesError

__all__ = ["BASE_WINDOWS", "DEFAULT_LATEST", "DEFAULT_WINDOWS", "FEATURE_GROUPS",
           "LABEL_COLUMNS", "MORE_PLACES", "MORE_SCALES", "TARGETS", "Feature", "FeatureKind",
           "FeatureSpec", "HistoryWindow", "Latest", "Target", "feature_catalog"]

#: How a feature's values are encoded by the learned transformers.
#: ``numeric``: a number, ``count``: a non-negative, skewed number such as a count
#: (log1p for linear models),
#: ``share``: a proportion in [0, 1] (null when there is nothing to divide),
#: ``binary``: 0 or 1, ``category``: a few dozen values (one-hot, rare grouped),
#: ``high_cardinality``: hundreds to thousands of values (target encoding, embeddings).
FeatureKind = Literal["numeric", "count", "share", "binary", "category", "high_cardinality"]

#: The groups a :class:`FeatureSpec` can switch on; ``arrest`` only with ``allow_arrest``,
#: ``offense`` (what kind of offense) only for the ``arrest`` target.
FEATURE_GROUPS = ("time", "place", "location", "domestic", "history", "report")

#: What a model predicts: ``index`` (an index offense, FBI Part I, from the IUCR code) or
#: ``arrest`` (an arrest was made).
Target = Literal["index", "arrest"]
TARGETS: tuple[str, ...] = ("index", "arrest")

#: The store column that holds each target's label.
LABEL_COLUMNS: dict[str, str] = {"index": "is_index", "arrest": "arrest"}


@dataclass(frozen=True)
class Feature:
    """One feature known at report time.

    Parameters
    ----------
    name : str
        Column name in the feature frame.
    sql : str
        DuckDB SQL expression computing it; it reads the columns of the
        ``rows`` relation built by :func:`crimeclass.features.feature_sql`.
    kind : FeatureKind
        How the learned encoders treat it.
    group : str
        One of :data:`FEATURE_GROUPS`, or ``"arrest"``.
    uses : tuple of str
        Store columns it is computed from (the leakage guard reads them).
    doc : str
        What it means, for people.
    history : bool
        Computed only from incidents strictly before this one (never from the
        row itself), so it may read the labels of those earlier incidents.
    """

    name: str
    sql: str
    kind: FeatureKind
    group: str
    uses: tuple[str, ...]
    doc: str
    history: bool = False


@dataclass(frozen=True)
class HistoryWindow:
    """Incidents in the same place in the ``days`` before an incident.

    Parameters
    ----------
    place : str
        A partition key of the ``rows`` relation: ``beat``, ``community_area``,
        ``grid_cell``, ``block``, ``block_location``, ``beat_location``,
        ``street_location`` or ``block_location_domestic``.
    days : int
        Length of the window that ends just before the incident's timestamp.
    """

    place: str
    days: int

    @property
    def stem(self) -> str:
        return f"{self.place}_{self.days}d"


@dataclass(frozen=True)
class Latest:
    """Hours since the latest earlier incident (or index offense) in the same place.

    Within the spec's longest history window (:attr:`FeatureSpec.lookback_days`); null
    where the place is unknown or holds no earlier incident in that time.

    Parameters
    ----------
    place : str
        A place of :data:`HISTORY_PLACES`.
    index : bool, default=False
        The latest index offense rather than the latest incident.
    """

    place: str
    index: bool = False

    @property
    def name(self) -> str:
        return f"hours_since_{'index_' if self.index else ''}{self.place}"


#: Partition keys the history windows may use, with the store columns behind each.
HISTORY_PLACES: dict[str, tuple[tuple[str, ...], str]] = {
    "beat": (("beat",), "the same police beat"),
    "community_area": (("community_area",), "the same community area"),
    "grid_cell": (("x_coordinate", "y_coordinate"), "the same grid cell"),
    "block": (("block",), "the same block (hundred block and street)"),
    "block_location": (("block", "location_description"),
                       "the same block and the same kind of place"),
    "beat_location": (("beat", "location_description"),
                      "the same beat and the same kind of place"),
    "street_location": (("block", "location_description"),
                        "the same street and the same kind of place"),
    "block_location_domestic": (("block", "location_description", "domestic"),
                                "the same block, kind of place and domestic flag"),
    "location": (("location_description",), "the same kind of place, anywhere in the city"),
    "grid_location": (("x_coordinate", "y_coordinate", "location_description"),
                      "the same grid cell and the same kind of place"),
    "beat_hours": (("beat",), "the same beat in the same four hours of the day"),
    "block_hours": (("block",), "the same block in the same four hours of the day"),
    "beat_week_hours": (("beat",), "the same beat in the same four hours of the day, on "
                        "weekdays or at weekends as this one"),
    "location_hours": (("location_description",), "the same kind of place, anywhere in the "
                       "city, in the same four hours of the day"),
    "community_location": (("community_area", "location_description"),
                           "the same community area and the same kind of place"),
    "grid_hours": (("x_coordinate", "y_coordinate"),
                   "the same grid cell in the same four hours of the day"),
}

#: The history windows of crimeclass's features until 2026-12-06: the week and month of the
#: beat, community area and grid cell, and years of the block and its kinds of place.
BASE_WINDOWS = (
    HistoryWindow("beat", 7), HistoryWindow("beat", 28),
    HistoryWindow("community_area", 7), HistoryWindow("community_area", 28),
    HistoryWindow("grid_cell", 7), HistoryWindow("grid_cell", 28),
    HistoryWindow("block", 365),
    HistoryWindow("block_location", 365), HistoryWindow("block_location", 1095),
    HistoryWindow("beat_location", 365),
    HistoryWindow("street_location", 365),
    HistoryWindow("block_location_domestic", 1095),
)

#: History at more scales than the base's week, month and years: the last day and the
#: last 90 days of the same beat, community area and grid cell, and 90 days of the block.
#: Measured in ``bench/ablation.py``: no gain on 2016 or 2017, so not in the default
#: (``FeatureSpec(history=MORE_SCALES)``).
MORE_SCALES = (*BASE_WINDOWS,
               *(HistoryWindow(place, days) for days in (1, 90)
                 for place in ("beat", "community_area", "grid_cell")),
               HistoryWindow("block", 90))

#: The default history: the base's and history around other places, the kind of place
#: across the city in the last 28 days, the grid cell and kind of place, and the same four
#: hours of the day (and part of the week) at the beat and the block: +0.0028 and +0.0016
#: ROC AUC on 2016 and 2017 in ``bench/ablation.py`` (``xgb_deeper_more_places``).
MORE_PLACES = (*BASE_WINDOWS,
               HistoryWindow("location", 28), HistoryWindow("grid_location", 365),
               HistoryWindow("beat_hours", 365), HistoryWindow("block_hours", 1095),
               HistoryWindow("beat_week_hours", 365))
DEFAULT_WINDOWS = MORE_PLACES

#: The default hours since the latest earlier incident (beside ``hours_since_block``) at
#: the block and kind of place, the beat and kind of place and in the grid cell, and since
#: the latest earlier index offense at those three and on the block.
DEFAULT_LATEST = (
    Latest("block_location"), Latest("beat_location"), Latest("grid_cell"),
    Latest("block", index=True), Latest("block_location", index=True),
    Latest("beat_location", index=True), Latest("grid_cell", index=True),
)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute.

    Parameters
    ----------
    groups : tuple of str, default=FEATURE_GROUPS
        Feature groups to include (see :data:`FEATURE_GROUPS`).
    grid_feet : int, default=1000
        Side of the square grid cells, in feet of the Illinois State Plane
        coordinates (1000 ft is about 300 m).
    history : tuple of HistoryWindow
        The history windows (incidents and index incidents in the same place
        in the days before).
    latest : tuple of Latest
        The hours since the latest earlier incident or index offense in a place.
    allow_arrest : bool, default=False
        Add the ``arrest`` flag as a feature. Arrest is recorded *after* the
        report, so a model that uses it does not predict at report time; every
        output of such a model says so. Not with ``target="arrest"``.
    target : {"index", "arrest"}, default="index"
        What the label is: an index offense (``is_index``), or an arrest
        (``arrest``). For ``arrest`` the kind of offense is known at report
        time and the *offense* features (primary type, description, IUCR, FBI
        code, index offense or not) are added.
    """

    groups: tuple[str, ...] = FEATURE_GROUPS
    grid_feet: int = 1000
    history: tuple[HistoryWindow, ...] = DEFAULT_WINDOWS
    latest: tuple[Latest, ...] = DEFAULT_LATEST
    allow_arrest: bool = False
    target: Target = "index"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise FeaturesError(f"unknown target {self.target!r}; targets are {list(TARGETS)}",
                                option="target", value=self.target)
        if self.target == "arrest" and self.allow_arrest:
            raise FeaturesError("arrest is the target: it cannot also be a feature "
                                "(allow_arrest=True)", option="allow_arrest", value=True)
        unknown = set(self.groups) - set(FEATURE_GROUPS)
        if unknown:
            raise FeaturesError(f"unknown feature group(s) {sorted(unknown)}; "
                                f"groups are {list(FEATURE_GROUPS)}", option="groups",
                                value=sorted(unknown))
        if self.grid_feet <= 0:
            raise FeaturesError(f"grid_feet must be positive, got {self.grid_feet}",
                                option="grid_feet", value=self.grid_feet)
        for w in self.history:
            if w.place not in HISTORY_PLACES:
                raise FeaturesError(f"unknown history place {w.place!r}; places are "
                                    f"{list(HISTORY_PLACES)}", option="history",
                                    value=w.place)
            if w.days <= 0:
                raise FeaturesError(f"history window days must be positive, got {w.days}",
                                    option="history", value=w.days)
        for latest in self.latest:
            if latest.place not in HISTORY_PLACES:
                raise FeaturesError(f"unknown place {latest.place!r} for the hours since the "
                                    f"latest incident; places are {list(HISTORY_PLACES)}",
                                    option="latest", value=latest.place)
            if latest == Latest("block"):
                raise FeaturesError("the hours since the latest incident on the block are "
                                    "always a feature (hours_since_block): leave "
                                    "Latest('block') out of latest", option="latest",
                                    value=latest.place)

    @property
    def label_column(self) -> str:
        """The store column holding the label: ``is_index`` or ``arrest``."""
        return LABEL_COLUMNS[self.target]

    @property
    def places(self) -> list[str]:
        """The kinds of place the history windows and the latest incidents read, sorted."""
        return sorted({w.place for w in self.history} | {x.place for x in self.latest})

    @property
    def lookback_days(self) -> int:
        """Days of earlier incidents the history features read."""
        days = [w.days for w in self.history] if "history" in self.groups else []
        return max(days, default=0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = [asdict(w) for w in self.history]
        d["latest"] = [asdict(x) for x in self.latest]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(groups=tuple(d["groups"]), grid_feet=int(d["grid_feet"]),
                   history=tuple(HistoryWindow(**w) for w in d["history"]),
                   # a spec saved before the latest incidents were features had none
                   latest=tuple(Latest(**x) for x in d.get("latest", [])),
                   allow_arrest=bool(d["allow_arrest"]),
                   target=d.get("target", "index"))


def _cyclic(name: str, value: str, period: float, doc: str) -> list[Feature]:
    angle = f"(2 * pi() * ({value}) / {period})"
    return [
        Feature(f"{name}_sin", f"sin{angle}", "numeric", "time", ("date",),
                f"sine of {doc} on a circle, so that its ends meet"),
        Feature(f"{name}_cos", f"cos{angle}", "numeric", "time", ("date",),
                f"cosine of {doc} on a circle, so that its ends meet"),
    ]


#: ISO day of the week (1 = Monday), as arithmetic that means the same in every SQL dialect
#: (1900-01-01 was a Monday); sqlglot compiles DuckDB's isodow() to a Spark expression
#: that is off by one day.
ISODOW = "(date_diff('day', DATE '1900-01-01', CAST(date AS DATE)) % 7 + 1)"


def _time() -> list[Feature]:
    t = ("date",)
    feats = [
        Feature("hour", "CAST(hour(date) AS DOUBLE)", "numeric", "time", t,
                "hour of the day the incident occurred (0-23, Chicago time)"),
        Feature("minute", "CAST(minute(date) AS DOUBLE)", "numeric", "time", t,
                "minute of the hour; round times (:00, :30) mark estimated times"),
        Feature("weekday", f"CAST({ISODOW} AS DOUBLE)", "numeric", "time", t,
                "day of the week, 1 = Monday ... 7 = Sunday"),
        Feature("month", "CAST(month(date) AS DOUBLE)", "numeric", "time", t, "month, 1-12"),
        Feature("day_of_month", "CAST(day(date) AS DOUBLE)", "numeric", "time", t,
                "day of the month, 1-31"),
        Feature("day_of_year", "CAST(dayofyear(date) AS DOUBLE)", "numeric", "time", t,
                "day of the year, 1-366"),
        Feature("weekend", f"CASE WHEN {ISODOW} >= 6 THEN 1.0 ELSE 0.0 END", "binary",
                "time", t, "Saturday or Sunday"),
        Feature("holiday", "CASE WHEN holiday_name IS NOT NULL THEN 1.0 ELSE 0.0 END",
                "binary", "time", t,
                "a US public holiday (federal, with observed days; `holidays` package)"),
        Feature("on_the_hour", "CASE WHEN minute(date) = 0 THEN 1.0 ELSE 0.0 END", "binary",
                "time", t, "time given to the hour (minute 0), often an estimate"),
        Feature("midnight", "CASE WHEN hour(date) = 0 AND minute(date) = 0 THEN 1.0 ELSE 0.0 END",
                "binary", "time", t, "time given as 00:00, often an unknown time of day"),
        Feature("first_of_month", "CASE WHEN day(date) = 1 THEN 1.0 ELSE 0.0 END", "binary",
                "time", t, "first day of a month, often an estimated date"),
    ]
    feats += _cyclic("hour", "hour(date) + CAST(minute(date) AS DOUBLE) / 60", 24,
                     "the time of day")
    feats += _cyclic("weekday", f"{ISODOW} - 1", 7, "the day of the week")
    feats += _cyclic("month", "month(date) - 1", 12, "the month")
    feats += _cyclic("day_of_year", "dayofyear(date) - 1", 365.25, "the day of the year")
    return feats


def _place() -> list[Feature]:
    return [
        Feature("district", "CAST(district AS VARCHAR)", "category", "place", ("district",),
                "police district"),
        Feature("ward", "CAST(ward AS VARCHAR)", "category", "place", ("ward",),
                "City Council ward"),
        Feature("beat", "CAST(beat AS VARCHAR)", "high_cardinality", "place", ("beat",),
                "police beat"),
        Feature("community_area", "CAST(community_area AS VARCHAR)", "high_cardinality",
                "place", ("community_area",), "community area (1-77)"),
        Feature("x_coordinate", "x_coordinate", "numeric", "place", ("x_coordinate",),
                "x, State Plane feet (shifted by the CPD for privacy)"),
        Feature("y_coordinate", "y_coordinate", "numeric", "place", ("y_coordinate",),
                "y, State Plane feet (shifted by the CPD for privacy)"),
        Feature("grid_cell", "grid_cell", "high_cardinality", "place",
                ("x_coordinate", "y_coordinate"), "square grid cell of the coordinates"),
        Feature("street", "street", "high_cardinality", "place", ("block",),
                "the street of Block, without the hundred block (e.g. 'W MADISON ST')"),
        Feature("block", "block", "high_cardinality", "place", ("block",),
                "Block: hundred block and street (e.g. '012XX W MADISON ST')"),
    ]


def _report() -> list[Feature]:
    return [Feature(
        "report_delay_days",
        "CASE WHEN _reported_us > _us THEN (_reported_us - _us) / 86400000000 "
        "WHEN _reported_us IS NOT NULL THEN 0.0 END",
        "count", "report", ("case_number", "date"),
        "days from the incident to its report (estimated from the case number's place in "
        "the order of reports: the median time of the incidents numbered just before it); "
        "0 for a time after that estimate, null without a case number")]


def derived_sql(spec: FeatureSpec) -> dict[str, str]:
    """The columns the ``rows`` relation derives from an incident's own fields (its grid
    cell and street), each a DuckDB expression."""
    g = spec.grid_feet
    return {
        "grid_cell": (f"CAST(CAST(floor(x_coordinate / {g}) AS BIGINT) AS VARCHAR) || '_' || "
                      f"CAST(CAST(floor(y_coordinate / {g}) AS BIGINT) AS VARCHAR)"),
        "street": "regexp_replace(block, '^[0-9X]+ +', '')",
    }


def hours_names(spec: FeatureSpec) -> list[str]:
    """The columns of the hours since the latest incidents that the history compilers
    give (the window SQL, the kernel, the online index): ``_hours_since_block`` and one
    per :class:`Latest` of ``spec``."""
    return ["_hours_since_block", *(f"_{x.name}" for x in spec.latest)]


def _history(spec: FeatureSpec) -> list[Feature]:
    feats = []
    for w in spec.history:
        uses, where = HISTORY_PLACES[w.place]
        uses = (*uses, "date", "is_index")
        feats += [
            Feature(f"n_{w.stem}", f"_n_{w.stem}", "count", "history", uses,
                    f"incidents in {where} in the {w.days} days before", history=True),
            Feature(f"index_{w.stem}", f"_k_{w.stem}", "count", "history", uses,
                    f"index offenses in {where} in the {w.days} days before", history=True),
            Feature(f"index_share_{w.stem}",
                    f"CASE WHEN _n_{w.stem} > 0 THEN _k_{w.stem} / _n_{w.stem} END", "share",
                    "history", uses,
                    f"share of index offenses among the incidents in {where} in the "
                    f"{w.days} days before (null when none)", history=True),
        ]
    feats += [
        Feature("hours_since_block", "_hours_since_block", "count", "history",
                ("block", "date"), "hours since the latest earlier incident on the same block "
                "(null when none in the data)", history=True),
    ]
    for x in spec.latest:
        uses, where = HISTORY_PLACES[x.place]
        what = "index offense" if x.index else "incident"
        feats.append(Feature(x.name, f"_{x.name}", "count", "history",
                             (*uses, "date", *(("is_index",) if x.index else ())),
                             f"hours since the latest earlier {what} in {where} (null when "
                             f"none in the {spec.lookback_days} days before)", history=True))
    return feats


def _offense() -> list[Feature]:
    """What kind of offense: known at report time, so a feature when the target is arrest."""
    return [
        Feature("primary_type", "primary_type", "category", "offense", ("primary_type",),
                "primary type of the offense (THEFT, BATTERY, NARCOTICS, ...)"),
        Feature("fbi_code", "fbi_code", "category", "offense", ("fbi_code",),
                "FBI (NIBRS) offense code"),
        Feature("iucr", "iucr", "high_cardinality", "offense", ("iucr",),
                "Illinois Uniform Crime Reporting code: the offense in detail"),
        Feature("description", "description", "high_cardinality", "offense",
                ("description",), "secondary description of the offense"),
        Feature("is_index", "CASE WHEN is_index THEN 1.0 WHEN NOT is_index THEN 0.0 END",
                "binary", "offense", ("is_index",),
                "an index offense (FBI Part I), from the IUCR code (null when unknown)"),
    ]


def feature_catalog(spec: FeatureSpec | None = None) -> list[Feature]:
    """The features of ``spec``, in a fixed order.

    Parameters
    ----------
    spec : FeatureSpec, optional
        Which groups; the defaults when omitted.

    Returns
    -------
    list of Feature
    """
    spec = spec or FeatureSpec()
    feats: list[Feature] = []
    if "time" in spec.groups:
        feats += _time()
    if "place" in spec.groups:
        feats += _place()
    if "location" in spec.groups:
        feats.append(Feature(
            "location_description", "location_description", "category", "location",
            ("location_description",), "kind of place (STREET, RESIDENCE, ...); rare kinds "
            "are grouped by the encoders"))
    if "domestic" in spec.groups:
        feats.append(Feature(
            "domestic", "CASE WHEN domestic THEN 1.0 WHEN NOT domestic THEN 0.0 END", "binary",
            "domestic", ("domestic",), "domestic-related (Illinois Domestic Violence Act)"))
    if "history" in spec.groups and spec.history:
        feats += _history(spec)
    if "report" in spec.groups:
        feats += _report()
    if spec.target == "arrest":
        feats += _offense()
    if spec.allow_arrest:
        feats.append(Feature(
            "arrest", "CASE WHEN arrest THEN 1.0 WHEN NOT arrest THEN 0.0 END", "binary",
            "arrest", ("arrest",), "an arrest was made: recorded AFTER the report, so not "
            "known at report time (only with allow_arrest)"))
    return feats

