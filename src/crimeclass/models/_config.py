"""What a training run does: :class:`TrainConfig`, and the words of each target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from crimeclass.features import TARGETS, FeatureSpec, Target
from crimeclass.models._cv import CVKind
from crimeclass.models._errors import ModelOptionError
from crimeclass.models._metrics import HELD_OUT_METRICS
from crimeclass.models._registry import (
    MODELS,
    baselines_for,
    default_models,
    parse_model_names,
)
from crimeclass.models._search import Scoring

__all__ = ["ARREST_WARNING", "TARGET_CLASSES", "TARGET_WORDS", "TrainConfig"]

ARREST_WARNING = ("these models use Arrest, which is recorded after the report: they do not "
                  "predict at report time")
#: What each target's classes mean, for people.
TARGET_CLASSES: dict[str, dict[str, str]] = {
    "index": {"0": "not an index offense", "1": "index offense"},
    "arrest": {"0": "no arrest", "1": "arrest"},
}
#: What each target's positive class is called, in titles.
TARGET_WORDS: dict[str, str] = {"index": "index offense", "arrest": "arrest"}

@dataclass(frozen=True)
class TrainConfig:
    """What a training run does.

    Parameters
    ----------
    models : tuple of str, optional
        Short names (see :data:`~crimeclass.models.MODELS`); by default every family the
        target allows, the stacked ensemble included (:func:`default_models`).
    baselines : bool, default=True
        Add the majority-class and location-rate baselines to the comparison.
    cv : {"time", "stratified"}, default="time"
        Time-ordered folds (train on earlier periods, validate on the next) or
        shuffled stratified k-fold, inside the training period.
    folds : int, default=3
    trials : int, default=20
        Optuna trials per model (the baselines have nothing to tune).
    since, until : str, optional
        The data window (ISO dates); the store's span by default.
    holdout : str, default="auto"
        The held-out period: ``auto`` (most recent complete year), ``2017``,
        ``2017-06`` or ``START:END``.
    sample : int, optional
        Train on this many training rows, drawn at random (seeded); the
        held-out period is always evaluated whole.
    search_sample : int or None, default=50000
        Rows the search sees (a seeded random subset of the training rows, in
        time order); the best parameters are then refitted on all training
        rows. None: the search sees them all.
    final_sample : int or None, default=1000000
        Rows of the training period (a seeded random subset, in time order) on
        which the search's best meets the family's defaults before the refit:
        both are fitted on the earliest 80 % and scored on the rest, and the
        defaults are kept when they score at least as well (the final round,
        :func:`~crimeclass.models.final_round`). None: no final round.
    half_life_days : float or None, default=365
        Recency weights: a training row this many days older than the latest row of a
        fit weighs half as much, in the families that take weights (XGBoost, LightGBM
        and the stack's bases; :class:`~crimeclass.models.RecencyPipeline`). Each
        cross-validation fold counts from its own latest row. None: every row alike.
    seed : int, default=0
        Seeds the samples, the folds, the search and the models: the same
        seed gives the same numbers.
    scoring : {"roc_auc", "average_precision", "neg_log_loss"}, default="roc_auc"
        What the search maximizes.
    primary_metric : str, default="roc_auc"
        Held-out metric that picks the best model.
    allow_arrest : bool, default=False
        Use Arrest as a feature (recorded after the report; every output says
        so). Index target only.
    target : {"index", "arrest"}, default="index"
        What to predict: an index offense (from the IUCR code, which is then
        never a feature), or an arrest (the kind of offense is then a feature,
        arrest never). Every output states it.
    timeout : float, optional
        Seconds after which a model's search starts no new trial.
    n_jobs : int, optional
        Threads for random forest and XGBoost (all cores by default).
    min_frequency : int, default=50
        Categories with fewer training rows are grouped as rare.
    memory_limit : str, default="3GB"
        DuckDB's memory limit while it computes the features (beyond it DuckDB
        spills to disk); the feature frame and the models come on top of it.
    features : FeatureSpec
    """

    models: tuple[str, ...] | None = None
    baselines: bool = True
    cv: CVKind = "time"
    folds: int = 3
    trials: int = 20
    since: str | None = None
    until: str | None = None
    holdout: str = "auto"
    sample: int | None = None
    search_sample: int | None = 50_000
    final_sample: int | None = 1_000_000
    half_life_days: float | None = 365.0
    seed: int = 0
    scoring: Scoring = "roc_auc"
    primary_metric: str = "roc_auc"
    allow_arrest: bool = False
    target: Target = "index"
    timeout: float | None = None
    n_jobs: int | None = None
    min_frequency: int = 50
    memory_limit: str = "3GB"
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ModelOptionError(f"unknown target {self.target!r}; targets are "
                                   f"{list(TARGETS)}", option="--target", value=self.target)
        if self.target == "arrest" and self.allow_arrest:
            raise ModelOptionError("arrest is the target: it cannot also be a feature "
                                   "(allow_arrest / --allow-arrest)", option="--allow-arrest",
                                   value=True)
        if self.models is None:  # every family the target allows (frozen: set once here)
            object.__setattr__(self, "models", default_models(self.target))
        for name in parse_model_names(list(self.models or ())):
            if self.target not in MODELS[name].targets:
                raise ModelOptionError(
                    f"model {name!r} cannot be trained for the {self.target!r} target (only "
                    f"{', '.join(MODELS[name].targets)})", option="--models", value=name)
        if self.primary_metric not in HELD_OUT_METRICS:
            raise ModelOptionError(f"unknown primary metric {self.primary_metric!r}; use one "
                                   f"of {list(HELD_OUT_METRICS)}", option="primary_metric",
                                   value=self.primary_metric)
        if self.folds < 2:
            raise ModelOptionError(f"folds must be at least 2, got {self.folds}",
                                   option="--folds", value=self.folds)
        if self.trials < 1:
            raise ModelOptionError(f"trials must be at least 1, got {self.trials}",
                                   option="--trials", value=self.trials)
        for name in ("sample", "search_sample", "final_sample"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ModelOptionError(f"{name} must be positive, got {v}",
                                       option=f"--{name.replace('_', '-')}", value=v)
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ModelOptionError(f"half_life_days must be positive, got "
                                   f"{self.half_life_days}", option="--half-life",
                                   value=self.half_life_days)
        if (self.allow_arrest, self.target) != (self.features.allow_arrest,
                                                self.features.target):
            object.__setattr__(self, "features",
                               FeatureSpec(**{**self.features.__dict__,
                                              "allow_arrest": self.allow_arrest,
                                              "target": self.target}))

    def model_names(self) -> list[str]:
        names = parse_model_names(list(self.models or ()))
        if self.baselines:
            names = [b for b in baselines_for(self.target) if b not in names] + names
        return names

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = list(self.models or ())
        d["features"] = self.features.to_dict()
        return d
