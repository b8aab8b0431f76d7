"""Does a model hold on later data? Its ROC AUC against its validation figure.

A model is tuned and its threshold chosen on validation folds inside the training
period; the figure a department is shown must hold on the periods after it. A
model whose ROC AUC on the evaluated rows falls more than :data:`DROP_MARGIN`
below its validation ROC AUC is flagged.

>>> validation_drop(0.75, 0.72)["flagged"]
True
>>> validation_drop(0.75, 0.74)["flagged"]
False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crimeclass.models import Run, roc_auc

__all__ = ["DROP_MARGIN", "validation_drop", "validation_roc_auc"]

#: Most ROC AUC a model may lose from validation to later data before it is flagged.
DROP_MARGIN = 0.02


def validation_roc_auc(run: Run, name: str) -> tuple[float | None, str]:
    """A model's validation ROC AUC and where it comes from.

    The run's own figure where it searched on ROC AUC (the mean over the
    time-ordered folds of the best trial, as ``metrics.json`` reports it), else
    the ROC AUC of the out-of-fold probabilities of ``validation.parquet``;
    None when the run holds neither.
    """
    cv = run.model_entry(name).get("cv") or {}
    if cv.get("scoring") == "roc_auc" and cv.get("mean") is not None:
        return float(cv["mean"]), "mean ROC AUC of the best trial's validation folds"
    validation = run.validation
    if validation is not None:
        rows = validation[validation["model"] == name]
        y = rows[run.label].to_numpy().astype(int)
        if len(np.unique(y)) == 2:
            return (float(roc_auc(y, rows["p"].to_numpy(dtype=float))),
                    "ROC AUC of the out-of-fold probabilities (validation.parquet)")
    return None, "no validation figure in the run"


def validation_drop(validation: float | None, later: float, *,
                    margin: float = DROP_MARGIN) -> dict[str, Any]:
    """The drop from ``validation`` to ``later`` ROC AUC, flagged beyond ``margin``."""
    if validation is None:
        return {"validation_roc_auc": None, "roc_auc": later, "drop": None,
                "margin": margin, "flagged": False}
    drop = validation - later
    return {"validation_roc_auc": validation, "roc_auc": later, "drop": drop,
            "margin": margin, "flagged": bool(drop > margin)}


def add_validation_drops(run: Run, results: list[dict[str, Any]], notes: list[str]
                         ) -> list[str]:
    """Each result's ``validation_drop``; a note for each flagged model; their names."""
    flagged = []
    for r in results:
        value, source = validation_roc_auc(run, r["name"])
        r["validation_drop"] = {**validation_drop(value, r["metrics"]["roc_auc"]["value"]),
                                "validation_source": source}
        d = r["validation_drop"]
        if d["flagged"]:
            flagged.append(r["name"])
            notes.append(f"{r['name']}: ROC AUC {d['roc_auc']:.3f} here is {d['drop']:.3f} "
                         f"below its validation figure {d['validation_roc_auc']:.3f} (more "
                         f"than {d['margin']}): it does not hold on these data")
    return flagged
