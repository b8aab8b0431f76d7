"""Writing an evaluation: evaluation.json, evaluation.md, evaluation.html, plots, model cards.

Everything is written into a temporary folder beside the target and renamed
into place when complete, so that a failure leaves nothing half written.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crimeclass.evaluation._drift import UNPUBLISHED
from crimeclass.models import INTERVAL_METRICS, METRICS, period_text

__all__ = ["interval_text", "model_card", "render_markdown", "write_evaluation"]


def interval_text(d: dict[str, float] | None, digits: int = 3) -> str:
    """A metric's value and interval as the reports write it: ``0.751 [0.749, 0.753]``."""
    if d is None:  # a metric an older evaluation did not report
        return "–"
    return f"{d['value']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def _slice_label(s: dict[str, Any]) -> str:
    return str(s["slice"]) + (f" ({s['name']})" if s.get("name") else "")


def _metrics_table(doc: dict[str, Any]) -> list[str]:
    lines = ["| model | " + " | ".join(METRICS[m].title for m in INTERVAL_METRICS)
             + " | threshold |", "|---|" + "---:|" * (len(INTERVAL_METRICS) + 1)]
    for r in doc["models"]:
        name = f"**{r['name']}**" if r["name"] == doc["best_model"] else r["name"]
        name += " (baseline)" if r["baseline"] else ""
        cells = " | ".join(interval_text(r["metrics"].get(m)) for m in INTERVAL_METRICS)
        lines.append(f"| {name} | {cells} | {r['threshold']:.3f} |")
    return lines


_WORDS = {
    "index": {"plural": "index offenses",
              "output": "P(the incident is an index offense, FBI Part I) from what is known "
                        "when it is reported (time, place, kind of place, domestic flag, earlier "
                        "incidents nearby)",
              "label": "The label comes from the CPD IUCR table (INDEX CODE I/N); Primary "
                       "Type, Description, IUCR and FBI Code are never features."},
    "arrest": {"plural": "arrests",
               "output": "P(an arrest is recorded for the incident) from what is known when it "
                         "is reported, the kind of offense included (time, place, kind of "
                         "place, offense type, domestic flag, earlier incidents nearby)",
               "label": "The label is the record's Arrest field, recorded after the fact; it "
                        "is never a feature."},
}


def _words(doc: dict[str, Any]) -> dict[str, str]:
    """Phrases for the run's target (index offense or arrest)."""
    return _WORDS[doc.get("target", "index")]


def _window_text(doc: dict[str, Any]) -> str:
    w = doc["window"]
    period = period_text(w["since"], w.get("until_excluded"), w["last"])
    return (f"{doc['source']['kind']}: {period}, {w['rows']:,} "
            f"labeled incidents ({w['positive_share']:.1%} {_words(doc)['plural']})"
            + (f"; metrics on {w['reported_rows']:,} of them" if w["reported_rows"] != w["rows"]
               else ""))


def _md_paired(doc: dict[str, Any]) -> list[str]:
    p = doc["paired"]
    if not p:
        return []
    out = ["## Best against runner-up (paired bootstrap)", "",
           f"{p['a']} against {p['b']}, on the same bootstrap replicates:", "",
           "| metric | " + p["a"] + " | " + p["b"] + " | difference [95%] | p |",
           "|---|---:|---:|---:|---:|"]
    for s in p["tests"]:
        out.append(f"| {METRICS[s['metric']].title} | {s['a']:.4f} | {s['b']:.4f} | "
                   f"{interval_text(s['difference'], 4)} | {s['p_value']:.3g} |")
    return [*out, ""]


def _md_calibration(doc: dict[str, Any]) -> list[str]:
    out = ["## Calibration", "",
           f"Calibration data: {doc['calibration_source']}. Sigmoid and isotonic maps are "
           "compared by cross-fitted Brier score on that data; the better one is kept if it "
           "beats none. Both Brier scores below are on evaluated rows the map never saw.", "",
           "| model | kept | Brier as trained | Brier calibrated | ECE as trained | "
           "ECE calibrated | helps |",
           "|---|---|---:|---:|---:|---:|---|"]
    for r in doc["models"]:
        c = r["calibration"]
        ece = (f"{c['ece_before']:.4f} | {c['ece_after']:.4f}" if "ece_before" in c
               else "– | –")  # evaluations before ECE was reported
        out.append(f"| {r['name']} | {c['method']} | {c['brier_before']:.4f} | "
                   f"{c['brier_after']:.4f} | {ece} | {'yes' if c['helps'] else 'no'} |")
    return [*out, ""]


def _md_slices(doc: dict[str, Any]) -> list[str]:
    out = ["## Slices", "",
           f"Every metric per {', '.join(c.replace('_', ' ') for c in doc['models'][0]['slices'])}"
           " is in evaluation.json. A slice is flagged when the upper end of its ROC AUC "
           f"interval lies more than {doc['config']['slice_margin']} below the model's ROC "
           "AUC on all rows (slices under 200 rows are not scored).", ""]
    flagged = [(r["name"], f) for r in doc["models"] for f in r["flagged"]]
    if flagged:
        out += ["| model | by | slice | rows | ROC AUC [95%] |", "|---|---|---|---:|---:|"]
        out += [f"| {n} | {f['by']} | {_slice_label(f)} | {f['rows']:,} | "
                f"{interval_text(f['roc_auc'])} |" for n, f in flagged]
    else:
        out.append("No slice is flagged.")
    return [*out, ""]


def _md_explanations(doc: dict[str, Any], img: Callable[[str, str], list[str]]) -> list[str]:
    if not any("importance" in r for r in doc["models"]):
        return []
    out = ["## What drives the models", "",
           "Permutation importance: the ROC AUC lost when one feature column is shuffled "
           "(mean of the repeats). Top five per model:", "",
           "| model | top features (ROC AUC lost) |", "|---|---|"]
    for r in doc["models"]:
        if "importance" in r:
            top = ", ".join(f"{f['feature']} ({f['importance']:.3f})"
                            for f in r["importance"]["features"][:5])
            out.append(f"| {r['name']} | {top} |")
    out.append("")
    for r in doc["models"]:
        out += img(f"importance_{r['name']}", f"permutation importance of {r['name']}")
    for r in doc["models"]:
        if "shap" in r:
            out += [f"SHAP values of {r['name']} ({r['shap']['scale']}, "
                    f"{r['shap']['rows']:,} rows): largest mean |SHAP| "
                    + ", ".join(f"{s['input']} ({s['value']:.3f})"
                                for s in r["shap"]["mean_abs"][:5]) + ".", "",
                    *img(f"shap_{r['name']}", f"SHAP values of {r['name']}")]
    return out


def _md_drift(doc: dict[str, Any], img: Callable[[str, str], list[str]]) -> list[str]:
    if not doc.get("drift"):
        return []
    compared = [d for d in doc["drift"] if d["psi"] is not None]
    unpublished = [d["feature"] for d in doc["drift"] if d["psi"] is None]
    moved = [d for d in compared if d["level"] != "stable"]
    out = ["## Drift against the training period", "",
           "Population stability index (PSI) of each feature (below 0.1 stable, 0.1 to "
           "0.25 moderate, above 0.25 major). "
           + (f"{len(moved)} of {len(compared)} features moved:" if moved
              else "Every feature compared is stable."), ""]
    if moved:
        out += ["| feature | PSI | level |", "|---|---:|---|"]
        out += [f"| {d['feature']} | {d['psi']:.3f} | {d['level']} |" for d in moved]
        out.append("")
    if unpublished:
        out += [f"{', '.join(unpublished)}: {UNPUBLISHED} (every value missing), so "
                "there is no distribution to compare with.", ""]
    return out + img("drift", "drift")


def render_markdown(doc: dict[str, Any], plots: dict[str, str], plot_dir: str = "plots") -> str:
    """The evaluation as one Markdown page (``plot_dir``: where the PNG files are, relative)."""
    def img(key: str, alt: str) -> list[str]:
        return [f"![{alt}]({plot_dir}/{plots[key]})", ""] if key in plots else []

    t = doc["train"]
    out = [f"# Evaluation of run {doc['run_id']}", "",
           f"- Evaluated on the {_window_text(doc)}.",
           f"- Trained on {t['since'][:10]} to {t['until'][:10]} ({t['rows']:,} rows).",
           f"- Thresholds: {doc['threshold_rule']} (per model below); calibration fit on "
           f"{doc['calibration_source']}.",
           f"- Intervals: bootstrap 95% percentile intervals, {doc['config']['n_boot']} "
           "replicates of the evaluated rows.", ""]
    if doc["allow_arrest"]:
        out += ["> **Warning: these models use Arrest, recorded after the report.**", ""]
    if doc["notes"]:
        out += ["## Notes", "", *[f"- {n}" for n in doc["notes"]], ""]
    out += ["## Metrics", "", *_metrics_table(doc), "", *img("metrics", "metrics"),
            "F1, precision, recall and balanced accuracy are at the threshold in the last "
            "column, chosen on validation data (never on these rows).", ""]
    out += _md_paired(doc) + _md_calibration(doc) + img("reliability", "reliability curves")
    out += _md_slices(doc)
    for col in ("district", "community_area", "year"):
        out += img(f"slices_{col}", f"slices by {col}")
    out += _md_explanations(doc, img) + _md_drift(doc, img)
    out += [f"Evaluation took {doc['seconds']:.0f} s.", ""]
    return "\n".join(out)


_USES_TO_AVOID = """\
- **Not for individual suspicion.** The model scores incidents, not people; a high score says
  nothing about anyone involved, and must never be used to stop, search, charge or sentence.
- **Not for patrol allocation without review.** Its inputs come from police records, which
  reflect where police were and who called them as much as where crime happened; allocating
  patrols by its output can feed that back into the data (a feedback loop). Any operational
  use needs a human review of the slices below and of the ethical considerations.
- Not for periods, places or record definitions far from the training data without checking
  drift and the metrics on that data first (`crimeclass evaluate RUN --data ...`)."""


def model_card(doc: dict[str, Any], name: str, run_config: dict[str, Any] | None = None) -> str:
    """A model card (Mitchell et al. 2019, "Model Cards for Model Reporting") in Markdown."""
    r = next(m for m in doc["models"] if m["name"] == name)
    t, c = doc["train"], r["calibration"]
    versions = (run_config or {}).get("versions", {})
    cv_kind = "time-ordered" if (r.get("cv") or {}).get("kind") == "time" else "stratified"
    advice = "lower: apply it" if c["helps"] else "no better: use the probabilities as they are"
    lines = [
        f"# Model card: {name} ({r['title']})", "",
        "## Model details", "",
        f"- Run `{doc['run_id']}`; model folder `models/{name}/` (manifest.json lists its "
        "files and their sha256; `crimeclass.models.load_model` checks them).",
        f"- Type: {r['title']}" + (" (a baseline)" if r["baseline"] else "") + ".",
        f"- Hyperparameters chosen by Optuna on {cv_kind} cross-validation inside the "
        f"training period: `{json.dumps(r.get('params') or {})}`.",
        f"- Decision threshold {r['threshold']:.4f}: {r['threshold_source']}.",
        "- Library versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."
        if versions else "- Library versions: see the run's config.json.",
        f"- Output: {_words(doc)['output']}.",
        "",
        "## Intended use", "",
        "- Crime analysts and researchers: studying which report-time circumstances go with "
        f"{_words(doc)['plural']}, data quality checks (records whose code disagrees "
        "strongly with the circumstances), and aggregate planning **with human review**.",
        "", "## Uses to avoid", "", _USES_TO_AVOID, "",
        "## Training data", "",
        f"- Chicago Police Department, \"Crimes - 2001 to Present\" (City of Chicago Data "
        f"Portal), incidents from {t['since'][:10]} to {t['until'][:10]} (excluded): "
        f"{t['rows']:,} rows, "
        f"{t.get('positive_share', t.get('index_share', float('nan'))):.1%} "
        f"{_words(doc)['plural']}. {_words(doc)['label']}",
        "", "## Evaluation data", "",
        f"- The {_window_text(doc)}.",
        f"- Held-out period of the run: {doc['holdout']['since'][:10]} to "
        f"{doc['holdout']['until'][:10]}; never used for tuning, thresholds or early stopping.",
        "", "## Metrics", "",
        "Bootstrap 95% intervals; threshold metrics at the threshold above.", "",
        "| metric | value [95% interval] |", "|---|---|",
        *[f"| {METRICS[m].title} | {interval_text(r['metrics'].get(m))} |"
          for m in INTERVAL_METRICS], "",
    ]
    others = [m for m in doc["models"] if m["baseline"] and m["name"] != name]
    if others:
        lines += ["Baselines on the same rows: " + "; ".join(
            f"{m['name']} ROC AUC {interval_text(m['metrics']['roc_auc'])}"
            for m in others) + ".", ""]
    lines += ["## Calibration", "",
              f"Calibration data: {doc['calibration_source']}. Kept: **{c['method']}**. "
              f"Brier score as trained {c['brier_before']:.4f}, calibrated {c['brier_after']:.4f} "
              f"({advice}).",
              "", *_card_slices(doc, r)]
    if "importance" in r:
        lines += ["## What drives it", "",
                  "Permutation importance (ROC AUC lost when shuffled): " + ", ".join(
                      f"{f['feature']} {f['importance']:.3f}"
                      for f in r["importance"]["features"][:8]) + ".", ""]
    return "\n".join(lines + _card_limits(doc))


def _card_slices(doc: dict[str, Any], r: dict[str, Any]) -> list[str]:
    lines = ["## Slices", ""]
    if r["flagged"]:
        lines += ["Much worse than on all rows (ROC AUC interval more than "
                  f"{doc['config']['slice_margin']} below {r['metrics']['roc_auc']['value']:.3f}):",
                  "", *[f"- {f['by'].replace('_', ' ')} {_slice_label(f)}: ROC AUC "
                        f"{interval_text(f['roc_auc'])}, {f['rows']:,} rows"
                        for f in r["flagged"]], ""]
    else:
        lines += [f"No {' / '.join(s.replace('_', ' ') for s in r['slices'])} slice is much "
                  "worse than all rows.", ""]
    worst = []
    for col, rows in r["slices"].items():
        scored = [s for s in rows if "roc_auc" in s]
        if scored:
            s = min(scored, key=lambda s: s["roc_auc"]["value"])
            worst.append(f"{col.replace('_', ' ')} {_slice_label(s)} "
                         f"{interval_text(s['roc_auc'])}")
    if worst:
        lines += ["Lowest ROC AUC per grouping: " + "; ".join(worst) + ".", ""]
    return lines


def _card_limits(doc: dict[str, Any]) -> list[str]:
    return [
        "## Known limits", "",
        f"- Moderate discrimination: what is known at report time separates "
        f"{_words(doc)['plural']} "
        "from the rest only partly (compare with the baselines above); it is a screening "
        "score, not a classification to act on alone.",
        "- `Date` is when the incident occurred; some are reported days later, so history "
        "features may count incidents not yet known at the report.",
        "- Drift: crime mix, reporting and recording practices change over time; check "
        "`crimeclass evaluate --data` on recent data before relying on it.",
        "- Labels follow the IUCR table shipped with crimeclass; codes reclassified later, and "
        "incidents later reclassified or unfounded, are not reflected.",
        "", "## Ethical considerations", "",
        "- **Reporting bias**: police records contain the incidents that were reported to or "
        "found by the police. Under-reporting differs between communities, offense types and "
        "over time; patrol presence itself shapes what is recorded.",
        "- Place features (district, beat, community area, block) are proxies for the "
        "neighborhoods' demographics; errors and scores differ between places (see Slices).",
        "- Location is published at block level and some incidents are withheld or moved to "
        "protect victims (e.g. sexual offenses), which affects the data for those offenses.",
        "- Any use affecting people needs review by those affected and human oversight of "
        "each decision.", "",
        "Format after Mitchell et al., \"Model Cards for Model Reporting\", FAT* 2019.", ""]


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }}
blockquote {{ background: #fff3cd; margin: 0; padding: 0.5em 1em; }}
code {{ background: #f5f5f5; }}
</style></head><body>
{body}
</body></html>
"""


def _html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    return _HTML.format(title=title, body=body)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the complete folder ``tmp`` to ``final``, replacing an earlier evaluation."""
    if final.exists():
        if not (final / "evaluation.json").is_file():
            raise FileExistsError(f"{final} exists and is not an evaluation folder; "
                                  "choose another --out")
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:6]}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def write_evaluation(doc: dict[str, Any], out: str | Path, *,
                     cards_into_run: bool = False) -> Path:
    """Write ``doc`` into the folder ``out``, atomically; return it.

    ``cards_into_run``: also write each model card to ``models/<name>/model_card.md``
    of the run (each file written under a temporary name and renamed).
    """
    from crimeclass.evaluation._plots import write_plots

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.mkdir()
    try:
        plots = write_plots(doc, tmp / "plots")
        public = {k: v for k, v in doc.items() if not k.startswith("_")}
        public["plots"] = {k: f"plots/{v}" for k, v in plots.items()}
        (tmp / "evaluation.json").write_text(json.dumps(public, indent=1, default=_plain) + "\n")
        md = render_markdown(doc, plots)
        (tmp / "evaluation.md").write_text(md)
        (tmp / "evaluation.html").write_text(_html(md, f"Evaluation of {doc['run_id']}"))
        run_config = None
        cfg_path = Path(doc["run_dir"]) / "config.json"
        if cfg_path.is_file():
            run_config = json.loads(cfg_path.read_text())
        (tmp / "model_cards").mkdir()
        cards = {}
        for r in doc["models"]:
            cards[r["name"]] = model_card(doc, r["name"], run_config)
            (tmp / "model_cards" / f"{r['name']}.md").write_text(cards[r["name"]])
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if cards_into_run:
        for name, text in cards.items():
            final = Path(doc["run_dir"]) / "models" / name / "model_card.md"
            part = final.with_name(f".model_card.md.{uuid.uuid4().hex[:6]}")
            part.write_text(text)
            os.replace(part, final)
    return out
