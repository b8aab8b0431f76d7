"""The comparison of a run: a Markdown table, and an HTML page with plots.

Computing and rendering are apart: :func:`comparison_rows` turns the run's
metrics into plain rows; the Markdown and the Jinja template only render them.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["comparison_markdown", "comparison_rows", "final_round_lines", "write_report"]

_COLUMNS = [
    ("model", "model"), ("roc_auc", "ROC AUC"), ("average_precision", "avg precision"),
    ("log_loss", "log loss"), ("brier", "Brier"), ("f1", "F1"), ("threshold", "threshold"),
    ("cv", "CV score (mean ± sd)"), ("seconds", "fit s"),
]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def comparison_rows(metrics: dict[str, Any]) -> list[dict[str, str]]:
    """One row of strings per model, best first-marked, in the run's order."""
    rows = []
    for m in metrics["models"]:
        h = m["metrics"]
        cv = m["cv"]
        name = m["name"] + (" (baseline)" if m["baseline"] else "")
        if m.get("best"):
            name = f"**{name}** ★"
        rows.append({
            "model": name,
            "roc_auc": _fmt(h["roc_auc"]), "average_precision": _fmt(h["average_precision"]),
            "log_loss": _fmt(h["log_loss"]), "brier": _fmt(h["brier"]), "f1": _fmt(h["f1"]),
            "threshold": _fmt(m["threshold"], 3),
            "cv": (f"{cv['mean']:.4f} ± {cv['std']:.4f}" if cv["mean"] is not None else "–"),
            "seconds": f"{m['seconds']['search'] + m['seconds']['refit']:.0f}",
        })
    return rows


def final_round_lines(metrics: dict[str, Any]) -> list[str]:
    """A sentence per model whose search's best met its defaults in a final round."""
    lines = []
    for m in metrics["models"]:
        final = m.get("final_round")
        if final:
            kept = {"defaults": "the defaults", "choice": "the search's best"}.get(
                final["kept"], f"the {final['kept']} shape")
            others = "".join(f", the {k} shape {v:.4f}"
                             for k, v in (final.get("candidates") or {}).items())
            lines.append(
                f"{m['name']}: the search's best scored {final['choice']:.4f}, the defaults "
                f"{final['defaults']:.4f}{others} ({final['scoring']}; fitted on the "
                f"earliest {final['fit_rows']:,} of {final['rows']:,} training rows, scored "
                f"on the rest): {kept} kept.")
    return lines


def comparison_markdown(metrics: dict[str, Any]) -> str:
    """The comparison table in Markdown, with the window and the primary metric."""
    hold = metrics["holdout"]
    target = metrics.get("target", "index")
    share = hold.get("positive_share", hold.get("index_share"))
    word = "arrests" if target == "arrest" else "index offenses"
    lines = [
        f"# Run {metrics['run_id']}",
        "",
        f"Target: **{target}** ("
        + ("an arrest was made; the kind of offense is a feature, arrest never"
           if target == "arrest" else
           "an index offense, FBI Part I; the offense type is never a feature") + ").",
        "",
        f"Held out: {hold['since'][:10]} to {hold['until'][:10]} (excluded), "
        f"{hold['rows']:,} incidents, {share:.1%} {word}. "
        f"Trained and tuned on {metrics['train']['since'][:10]} to "
        f"{metrics['train']['until'][:10]} ({metrics['train']['rows']:,} incidents).",
        f"Metrics on the held-out period; F1 at the threshold chosen on validation folds. "
        f"CV: {metrics['cv']['kind']} folds ({metrics['cv']['folds']}), "
        f"{metrics['cv']['scoring']}. ★ best by held-out {metrics['primary_metric']}.",
    ]
    if metrics.get("allow_arrest"):
        lines.append("")
        lines.append("**WARNING: these models use Arrest, which is recorded after the report; "
                     "they do not predict at report time.**")
    lines += ["", "| " + " | ".join(t for _, t in _COLUMNS) + " |",
              "|" + "|".join("---" if k == "model" else "---:" for k, _ in _COLUMNS) + "|"]
    for r in comparison_rows(metrics):
        lines.append("| " + " | ".join(r[k] for k, _ in _COLUMNS) + " |")
    weighted = [m["name"] for m in metrics["models"] if m.get("half_life_days")]
    if weighted:
        half = max(m["half_life_days"] for m in metrics["models"] if m.get("half_life_days"))
        lines += ["", f"Recency weights (a training row {half:g} days older than the latest "
                      f"weighs half as much): {', '.join(weighted)}."]
    finals = final_round_lines(metrics)
    if finals:
        lines += ["", "Final round (the search's best against the defaults, on more rows "
                      "than the search saw):", ""] + [f"- {line}" for line in finals]
    return "\n".join(lines) + "\n"


def _plots(y: np.ndarray, preds: dict[str, np.ndarray], thresholds: dict[str, float],
           out: Path, target: str = "index") -> dict[str, str]:
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_roc, ax_pr = fig.subplots(1, 2)
    for name, p in preds.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, label=name, lw=1.4)
        if np.ptp(p) == 0:  # a constant score has one operating point, not a curve
            ax_pr.plot([1.0], [float(np.mean(y))], marker="o", ls="", label=name)
            continue
        prec, rec, _ = precision_recall_curve(y, p)
        ax_pr.plot(rec, prec, label=name, lw=1.4)
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_pr.axhline(float(np.mean(y)), color="grey", lw=0.8, ls=":")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall",
              ylim=(0, 1.01))
    ax_roc.legend(fontsize=8, loc="lower right")
    fig.savefig(out / "roc_pr.png", dpi=110)
    files["roc_pr"] = "plots/roc_pr.png"

    fig = Figure(figsize=(5.6, 4.8), layout="constrained")
    ax = fig.subplots()
    for name, p in preds.items():
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, lw=1.2, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(xlabel="mean predicted probability",
           ylabel="observed arrest share" if target == "arrest" else "observed index share",
           title="Calibration (deciles of prediction)")
    ax.legend(fontsize=8)
    fig.savefig(out / "calibration.png", dpi=110)
    files["calibration"] = "plots/calibration.png"

    n = len(preds)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(2.9 * cols, 2.7 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (name, p) in zip(axes, preds.items(), strict=False):
        pred = p >= thresholds[name]
        cm = np.array([[np.sum(~pred & (y == 0)), np.sum(pred & (y == 0))],
                       [np.sum(~pred & (y == 1)), np.sum(pred & (y == 1))]])
        ax.imshow(cm / cm.sum(), cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, f"{v:,}\n{v / cm.sum():.0%}", ha="center", va="center", fontsize=8)
        ticks = ["no arrest", "arrest"] if target == "arrest" else ["not index", "index"]
        ax.set_xticks([0, 1], ticks, fontsize=8)
        ax.set_yticks([0, 1], ticks, fontsize=8)
        ax.set_title(f"{name} (t={thresholds[name]:.2f})", fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    for ax in axes[n:]:
        ax.axis("off")
    fig.savefig(out / "confusion.png", dpi=110)
    files["confusion"] = "plots/confusion.png"
    return files




def write_report(folder: Path, metrics: dict[str, Any], y: np.ndarray,
                 preds: dict[str, np.ndarray]) -> None:
    """Write ``comparison.md``, ``report.html`` and ``plots/`` into a run folder."""
    import jinja2

    (folder / "comparison.md").write_text(comparison_markdown(metrics))
    thresholds = {m["name"]: m["threshold"] for m in metrics["models"]}
    plots = _plots(np.asarray(y).astype(int), preds, thresholds, folder / "plots",
                   metrics.get("target", "index"))
    rows: list[dict[str, Any]] = list(comparison_rows(metrics))
    for r, m in zip(rows, metrics["models"], strict=True):
        r["best"] = bool(m.get("best"))
        r["model"] = html.escape(r["model"].replace("**", "").replace(" ★", "")) + (
            " ★" if m.get("best") else "")
    view = {**metrics, "models": [
        {**m, "params_text": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in m["params"].items())
         or "(none)"} for m in metrics["models"]]}
    template = resources.files("crimeclass.models").joinpath("report.html.j2").read_text()
    env = jinja2.Environment(autoescape=True)
    page = env.from_string(template).render(m=view, rows=rows, columns=_COLUMNS, plots=plots,
                                            finals=final_round_lines(metrics))
    (folder / "report.html").write_text(page)
