"""Plots of an evaluation (matplotlib, written as PNG files)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_plots"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, n)
    return (n + cols - 1) // cols, cols


def _metrics(doc: dict[str, Any], path: Path) -> None:
    plt = _plt()
    names = [r["name"] for r in doc["models"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(names) + 1.6), sharey=True)
    for ax, m, label in zip(axes, ("roc_auc", "average_precision", "brier"),
                            ("ROC AUC", "PR AUC (average precision)",
                             "Brier score (lower is better)"),
                            strict=True):
        for i, r in enumerate(doc["models"]):
            iv = r["metrics"][m]
            color = "tab:green" if r["name"] == doc["best_model"] else (
                "tab:gray" if r["baseline"] else "tab:blue")
            err = [[iv["value"] - iv["low"]], [iv["high"] - iv["value"]]]
            ax.errorbar(iv["value"], i, xerr=err, fmt="o", color=color, capsize=3)
        ax.set_title(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    fig.suptitle("Held-out metrics with bootstrap 95% intervals" if doc["source"]["kind"]
                 .startswith("held") else "Metrics with bootstrap 95% intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ece(c: dict[str, Any], when: str) -> str:
    key = f"ece_{when}"
    return f", ECE {c[key]:.4f}" if key in c else ""


def _reliability(doc: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rows, cols = _grid(len(doc["models"]))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    for ax, r in zip(axes.flat, doc["models"], strict=False):
        c = r["calibration"]
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        b = c["reliability_before"]
        ax.plot(b["predicted"], b["observed"], "o-", ms=3,
                label=f"as trained (Brier {c['brier_before']:.4f}{_ece(c, 'before')})")
        if c["method"] != "none":
            a = c["reliability_after"]
            ax.plot(a["predicted"], a["observed"], "s--", ms=3,
                    label=f"{c['method']} (Brier {c['brier_after']:.4f}{_ece(c, 'after')})")
        ax.set_title(r["name"])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted")
        ax.set_ylabel("observed share of " + ("arrests" if doc.get("target") == "arrest"
                                              else "index offenses"))
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(doc["models"]):]:
        ax.set_visible(False)
    fig.suptitle("Reliability (deciles of the predictions)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _importance(r: dict[str, Any], path: Path, top: int = 15) -> None:
    plt = _plt()
    feats = r["importance"]["features"][:top]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(feats) + 1.2))
    ax.barh(range(len(feats)), [f["importance"] for f in feats],
            xerr=[f["std"] for f in feats], color="tab:blue")
    ax.set_yticks(range(len(feats)), [f["feature"] for f in feats], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ROC AUC lost when shuffled")
    ax.set_title(f"{r['name']}: permutation importance ({r['importance']['rows']:,} rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _shap(name: str, values: np.ndarray, inputs: Any, path: Path, scale: str) -> None:
    from crimeclass.evaluation._explain import import_shap

    shap = import_shap()
    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap.summary_plot(values, inputs, max_display=15, show=False, plot_size=(7.5, 5.5))
    fig = plt.gcf()
    fig.axes[0].set_title(f"{name}: SHAP values ({scale}), {len(values):,} rows")
    fig.axes[0].set_xlabel(f"SHAP value (impact on the {scale})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slices(doc: dict[str, Any], col: str, path: Path) -> None:
    plt = _plt()
    r = next(m for m in doc["models"] if m["name"] == doc["best_model"])
    rows = sorted((s for s in r["slices"][col] if "roc_auc" in s),
                  key=lambda s: (0, int(s["slice"])) if str(s["slice"]).isdigit()
                  else (1, str(s["slice"])))
    if not rows:
        return
    overall = r["metrics"]["roc_auc"]["value"]
    labels = [str(s["slice"]) + (f" {s['name']}" if s.get("name") else "") for s in rows]
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(rows) + 1.3))
    for i, s in enumerate(rows):
        iv = s["roc_auc"]
        ax.errorbar(iv["value"], i, xerr=[[iv["value"] - iv["low"]], [iv["high"] - iv["value"]]],
                    fmt="o", ms=3, capsize=2, color="tab:red" if s["worse"] else "tab:blue")
    ax.axvline(overall, color="0.4", ls="--", lw=1, label=f"all rows {overall:.3f}")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ROC AUC (95% interval); red: flagged much worse")
    ax.set_title(f"{r['name']}: ROC AUC by {col.replace('_', ' ')}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _drift(doc: dict[str, Any], path: Path, top: int = 20) -> None:
    plt = _plt()
    rows = [r for r in doc["drift"] if r["psi"] is not None][:top]  # unpublished: no PSI
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(rows) + 1.2))
    colors = {"stable": "tab:green", "moderate": "tab:orange", "major": "tab:red"}
    ax.barh(range(len(rows)), [r["psi"] for r in rows], color=[colors[r["level"]] for r in rows])
    ax.set_yticks(range(len(rows)), [r["feature"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.1, color="0.6", ls=":", lw=1)
    ax.axvline(0.25, color="0.6", ls="--", lw=1)
    ax.set_xlabel("PSI against the training period\n(0.1 moderate, 0.25 major)")
    ax.set_title("Feature drift")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(doc: dict[str, Any], folder: Path) -> dict[str, str]:
    """Draw every plot of ``doc`` into ``folder``; return {plot name: file name}."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matplotlib layout notes
        _metrics(doc, folder / "metrics.png")
        out["metrics"] = "metrics.png"
        _reliability(doc, folder / "reliability.png")
        out["reliability"] = "reliability.png"
        best = next(m for m in doc["models"] if m["name"] == doc["best_model"])
        for col in best.get("slices", {}):
            _slices(doc, col, folder / f"slices_{col}.png")
            if (folder / f"slices_{col}.png").exists():
                out[f"slices_{col}"] = f"slices_{col}.png"
        for r in doc["models"]:
            if "importance" in r:
                _importance(r, folder / f"importance_{r['name']}.png")
                out[f"importance_{r['name']}"] = f"importance_{r['name']}.png"
        for name, (values, inputs) in doc["_plot"].get("shap", {}).items():
            scale = next(m for m in doc["models"] if m["name"] == name)["shap"]["scale"]
            _shap(name, values, inputs, folder / f"shap_{name}.png", scale)
            out[f"shap_{name}"] = f"shap_{name}.png"
        if doc.get("drift"):
            _drift(doc, folder / "drift.png")
            out["drift"] = "drift.png"
    return out
