"""docs/results.md from the committed outputs of the results run (``make results-docs``).

``make results`` trains and evaluates on the real data, then calls this script with
``--run RUN``: the run's small outputs (its JSON, comparison table, model cards and plots;
never the models or the predictions) are copied to ``docs/results/``. Without ``--run``
the page is rendered again from what ``docs/results/`` holds, so every number of
docs/results.md comes from a committed file (``tests/test_results_docs.py`` checks it).
``--check`` renders and fails when docs/results.md differs from the rendering.

``--earlier RUN`` adds the same configuration trained a year earlier (rolling origin): its
JSON goes to ``docs/results/earlier/`` and the page sets its held-out year beside the run's.

Run: ``python scripts/results_docs.py [--run RUN] [--earlier RUN] [--results DIR] [--out FILE]
[--check]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from crimeclass.evaluation import interval_text, render_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
OUT = ROOT / "docs" / "results.md"
#: ``make peers``'s figures (bench/peers.py): shown when they compare the committed run.
PEERS = ROOT / "bench" / "results" / "peers.json"
PEER_TITLES = {"lgbm_default": "`LGBMClassifier()`, defaults, places as categories",
               "lgbm_tuned": "LightGBM, Optuna trials, early stopping on the latest tenth",
               "xgb_default": "`XGBClassifier()`, defaults, places as categories",
               "flaml": "FLAML `AutoML`, its own choice of learners"}
#: The run's small outputs, by their path in the run folder (and in docs/results/).
FILES = ("config.json", "data.json", "metrics.json", "evaluation/evaluation.json")
#: The run's folders of small outputs: the training plots, the evaluation's plots and cards.
FOLDERS = ("plots", "evaluation/plots", "evaluation/model_cards")
#: The slices whose worst member the page names.
SLICE_BYS = ("district", "community_area")
#: The same configuration with its window a year earlier (rolling origin): its JSON only,
#: in this folder of docs/results/.
EARLIER = "earlier"
#: What may differ between the two origins' configurations: their windows and identity.
WINDOW_KEYS = frozenset({"run_id", "since", "until", "holdout", "versions"})


def copy_run(run: Path, results: Path, folders: tuple[str, ...] = FOLDERS) -> None:
    """The run's small outputs into ``results`` (emptied first), in the run's layout: its
    JSON and ``folders`` (the plots and cards; none for the earlier origin)."""
    missing = [f for f in (*FILES, *folders) if not (run / f).exists()]
    if missing:
        sys.exit(f"error: {run} lacks {', '.join(missing)} (train, then `crimeclass "
                 "evaluate RUN`, before this script)")
    if results.exists():
        shutil.rmtree(results)
    for f in FILES:
        (results / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / f, results / f)
    for d in folders:
        shutil.copytree(run / d, results / d)


def _load(results: Path, name: str) -> Any:
    return json.loads((results / name).read_text())


def _shift(markdown: str) -> list[str]:
    """Headings one level down (the page has its own title), the title line dropped."""
    lines = markdown.splitlines()[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return ["#" + line if line.startswith("#") else line for line in lines]


def _share(x: float) -> str:
    return f"{100 * x:.1f} %"


def _run_table(config: dict[str, Any], metrics: dict[str, Any], data: dict[str, Any],
               doc: dict[str, Any]) -> list[str]:
    t, h = metrics["train"], metrics["holdout"]
    tuned = list(config["models"])
    versions = ", ".join(f"{k} {v}" for k, v in config["versions"].items())
    return [
        "| | |", "|---|---|",
        f"| run | `{metrics['run_id']}` |",
        f"| models | {', '.join(tuned)}; baselines: "
        f"{', '.join(n for n in config['model_names'] if n not in tuned)} |",
        f"| search | {config['trials']} Optuna trials per model on a sample of "
        f"{t['search_rows']:,} training rows, {config['folds']} time-ordered folds, "
        f"scored by {config['scoring']}; seed {config['seed']}, {config['n_jobs']} threads |",
        f"| store | {data['store_rows']:,} incidents from {len(data['ingests'])} files |",
        f"| trained on | {t['since'][:10]} to {t['until'][:10]} (excluded): {t['rows']:,} "
        f"incidents, {_share(t['positive_share'])} index offenses |",
        f"| held out | {h['since'][:10]} to {h['until'][:10]} (excluded): {h['rows']:,} "
        f"incidents, {_share(h['positive_share'])} index offenses |",
        f"| time | training {metrics['seconds']:,.0f} s, evaluation {doc['seconds']:,.0f} s |",
        f"| versions | {versions} |",
    ]


def _trained(metrics: dict[str, Any]) -> list[str]:
    """Each model as training reported it: its search, cross-validation and time."""
    out = ["| model | what | CV ROC AUC (mean ± sd of the folds) | held-out ROC AUC | "
           "threshold | trials (complete / pruned) | search s | refit s |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for m in metrics["models"]:
        cv, t, s = m["cv"], m["trials"], m["seconds"]
        name = f"**{m['name']}**" if m["name"] == metrics["best_model"] else m["name"]
        out.append(f"| {name} | {m['title']} | {cv['mean']:.4f} ± {cv['std']:.4f} | "
                   f"{m['metrics']['roc_auc']:.4f} | {m['threshold']:.3f} | {t['complete']} / "
                   f"{t['pruned']} | {s['search']:,.0f} | {s['refit']:,.0f} |")
    return out


def _peers(peers: dict[str, Any] | None, run_id: str) -> list[str]:
    """crimeclass's best against what a data scientist would run instead, if measured on
    this run."""
    if peers is None or Path(peers["crimeclass"]["run"]).name != run_id:
        return ["## Against what a data scientist would run instead", "",
                "Not measured on this run yet: `make peers` (bench/peers.py) writes "
                "`bench/results/peers.json`, then this page shows it.", ""]
    best = peers["crimeclass"]
    settings = peers["settings"]
    out = ["## Against what a data scientist would run instead", "",
           f"`make peers` (bench/peers.py, `bench/results/peers.json`): on the same "
           f"{peers['rows']['features']} features and the same split ({peers['rows']['train']:,} "
           f"training rows, {peers['rows']['holdout']:,} held out), each peer fitted in the "
           f"same process; FLAML's budget {settings['flaml_budget']:,.0f} s, the tuned "
           f"LightGBM {settings['lgbm_trials']} trials. The last columns: the paired "
           f"bootstrap ({settings['n_boot']} replicates) of crimeclass's best minus the peer.",
           "", "| model | fit s | ROC AUC | PR AUC | log loss | best minus it: ROC AUC [95%] "
           "| p |", "|---|---:|---:|---:|---:|---:|---:|",
           f"| **crimeclass: {best['model']}** | {best['fit_seconds']:,.0f} | "
           f"{best['roc_auc']:.4f} | {best['average_precision']:.4f} | "
           f"{best['log_loss']:.4f} | | |"]
    for p in peers["peers"]:
        d = p["best_minus_peer"]["roc_auc"]
        iv = d["difference"]
        title = PEER_TITLES.get(p["name"], p["name"])
        if p.get("best_estimator"):
            title += f" (it chose {p['best_estimator']})"
        out.append(f"| {title} | {p['fit_seconds']:,.0f} | "
                   f"{p['roc_auc']:.4f} | {p['average_precision']:.4f} | "
                   f"{p['log_loss']:.4f} | {iv['value']:+.4f} [{iv['low']:+.4f}, "
                   f"{iv['high']:+.4f}] | {d['p_value']} |")
    ahead = peers["crimeclass_ahead_of_every_peer"]
    out += ["", "The target, crimeclass's best ahead of every peer with the interval of the "
            f"difference above zero: **{'met' if ahead else 'not met'}**.", ""]
    return out


def _weakest(doc: dict[str, Any]) -> list[str]:
    """The best model's worst district and community area, with intervals."""
    best = next(r for r in doc["models"] if r["name"] == doc["best_model"])
    auc = interval_text(best["metrics"]["roc_auc"])
    out = [f"The best model, **{best['name']}**, has ROC AUC {auc} on all held-out incidents. "
           "Its weakest and strongest slices (those with enough rows for an interval):", "",
           "| by | weakest | rows | ROC AUC [95%] | strongest | rows | ROC AUC [95%] |",
           "|---|---|---:|---:|---|---:|---:|"]
    for by in SLICE_BYS:
        scored = [s for s in best["slices"].get(by, []) if "roc_auc" in s]
        if not scored:
            continue
        lo = min(scored, key=lambda s: s["roc_auc"]["value"])
        hi = max(scored, key=lambda s: s["roc_auc"]["value"])
        out.append(f"| {by} | {_slice(lo)} | {lo['rows']:,} | {interval_text(lo['roc_auc'])} | "
                   f"{_slice(hi)} | {hi['rows']:,} | {interval_text(hi['roc_auc'])} |")
    return [*out, ""]


def _holds(doc: dict[str, Any]) -> list[str]:
    """Each model's validation ROC AUC against the held-out one, and whether it is flagged."""
    out = ["## From validation to the held-out year", "",
           "`crimeclass evaluate` flags a model whose held-out ROC AUC falls more than the "
           "margin below its validation figure (inside the training years).", "",
           "| model | validation ROC AUC | held-out ROC AUC | drop | margin | flagged |",
           "|---|---:|---:|---:|---:|---|"]
    for r in doc["models"]:
        d = r["validation_drop"]
        if d["validation_roc_auc"] is None:
            continue
        out.append(f"| {r['name']} | {d['validation_roc_auc']:.4f} | {d['roc_auc']:.4f} | "
                   f"{d['drop']:.4f} | {d['margin']} | {'yes' if d['flagged'] else 'no'} |")
    return [*out, ""]


def _years(metrics: dict[str, Any]) -> tuple[str, str]:
    """The training years and the held-out period of a run, as the page writes them."""
    t, h = metrics["train"], metrics["holdout"]
    last = int(t["until"][:4]) - (t["until"][5:10] == "01-01")
    return f"{t['since'][:4]}-{last}", str(h.get("label") or h["since"][:10])


def _origin_rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["models"] if r["validation_drop"]["validation_roc_auc"]
            is not None and not r["baseline"]}


def _over_time(results: Path) -> list[str]:
    """The same configuration trained a year earlier, beside the run: does it hold?"""
    out = ["## Holds over time: the same configuration a year earlier", ""]
    if not (results / EARLIER / "metrics.json").exists():
        return [*out, "Not measured for this run: `make results` trains the earlier origin "
                "too, and `scripts/results_docs.py --earlier RUN` copies it.", ""]
    runs = [(_load(results / EARLIER, "config.json"), _load(results / EARLIER, "metrics.json"),
             _load(results / EARLIER, "evaluation/evaluation.json")),
            (_load(results, "config.json"), _load(results, "metrics.json"),
             _load(results, "evaluation/evaluation.json"))]
    (c0, m0, d0), (c1, m1, d1) = runs
    differ = sorted(k for k in c0.keys() | c1.keys()
                    if k not in WINDOW_KEYS and c0.get(k) != c1.get(k))
    (t0, h0), (t1, h1) = _years(m0), _years(m1)
    out += [f"Rolling origin: run `{m0['run_id']}` trained on {t0} and held out {h0}; the run "
            f"above trained on {t1} and held out {h1}. "
            + ("Their configurations are the same but for the window (models, trials, "
               "folds, seed, features)." if not differ else
               f"Their configurations differ in: {', '.join(differ)}.")
            + " Validation is the mean ROC AUC of the best trial's time-ordered folds inside "
            "the training years; drop is validation minus held-out (95% bootstrap intervals "
            "on the held-out figures).", "",
            f"| model | validation {t0} | held out {h0} [95%] | drop | validation {t1} | "
            f"held out {h1} [95%] | drop |", "|---|---:|---:|---:|---:|---:|---:|"]
    early, late = _origin_rows(d0), _origin_rows(d1)
    for name in [n for n in late if n in early]:
        cells = []
        for r in (early[name], late[name]):
            v = r["validation_drop"]
            cells += [f"{v['validation_roc_auc']:.4f}", interval_text(r["metrics"]["roc_auc"]),
                      f"{v['drop']:+.4f}"]
        best = " (best)" if name == m1["best_model"] else ""
        out.append(f"| {name}{best} | " + " | ".join(cells) + " |")
    return [*out, "", *_largest_drops([(h0, early), (h1, late)]), ""]


def _largest_drops(origins: list[tuple[str, dict[str, dict[str, Any]]]]) -> list[str]:
    """One sentence: each origin's largest drop, and the models `evaluate` flagged."""
    parts, flagged = [], []
    for year, rows in origins:
        name = max(rows, key=lambda n: rows[n]["validation_drop"]["drop"])
        drop = rows[name]["validation_drop"]
        parts.append(f"{drop['drop']:+.4f} ({name}) on {year}")
        flagged += [f"{n} on {year}" for n, r in rows.items() if r["validation_drop"]["flagged"]]
    margin = origins[-1][1][next(iter(origins[-1][1]))]["validation_drop"]["margin"]
    return [f"Largest drop from validation to the later year: {', '.join(parts)}. "
            f"`crimeclass evaluate` flags a drop of more than {margin}: "
            + (", ".join(flagged) if flagged else "no model on either origin") + "."]


def _slice(s: dict[str, Any]) -> str:
    return str(s["slice"]) + (f" {s['name']}" if s.get("name") else "")


def _cards(results: Path, out: Path) -> list[str]:
    folder = results / "evaluation" / "model_cards"
    links = [f"[{p.stem}]({_rel(p, out)})" for p in sorted(folder.glob("*.md"))]
    return ["## Model cards", "",
            "Each model's card (after Mitchell et al. 2019: intended use and uses to avoid, "
            "data, metrics with intervals, calibration, flagged slices, what drives it, "
            "limits and ethical considerations): " + ", ".join(links) + ".", ""]


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out.parent)).as_posix()


INTRO = """\
# Results on the real data

Index offense or not, from what is known when an incident is reported, trained on the
earlier years and evaluated on a later one that no search, threshold, early stopping or
calibration ever saw. **This page is generated**: `make results` ingests the yearly files of
`../shared/data`, trains, evaluates and copies the run's small outputs (its JSON, tables,
model cards and plots; not the models) to [docs/results/](results/); `make results-docs`
renders this page from them again (`scripts/results_docs.py`), and a test checks that
every number in its tables is in those files. Edit the script, not this page.

```
make results          # about two hours on 2 cores (two runs); ../shared/data beside the checkout
make results-docs     # this page from docs/results/ (seconds)
```
"""

ARREST = """\
## The arrest question

Public projects on this data often predict whether an incident ends in an **arrest**,
with the offense type as a feature. `crimeclass train --target arrest` asks that question
(see [models](models.md#the-arrest-target)); no run of it is committed, so this page gives
no figures for it. Expect a far higher ROC AUC there than here, and read it with care:
some offenses (narcotics, prostitution, weapons violations) are recorded *because*
someone was arrested, so the offense type nearly is the label.
"""


def render(results: Path, out: Path, peers: Path = PEERS) -> str:
    """docs/results.md from the outputs in ``results`` (and the peers' figures)."""
    config, metrics = _load(results, "config.json"), _load(results, "metrics.json")
    measured = json.loads(peers.read_text()) if peers.exists() else None
    data, doc = _load(results, "data.json"), _load(results, "evaluation/evaluation.json")
    plots = _rel(results / "evaluation", out)  # the document names them "plots/..."
    parts = [INTRO, "## The run", "", *_run_table(config, metrics, data, doc), "",
             "## Trained", "",
             "As training reported each model (in bold: the best by held-out ROC AUC); the "
             "search ran on the sample above, the refit on every training row.", "",
             *_trained(metrics), "",
             f"## Evaluated: run {doc['run_id']}", "",
             *_shift(render_markdown(doc, doc.get("plots", {}), plots)), "",
             *_holds(doc), *_over_time(results), *_peers(measured, metrics["run_id"]),
             "## Where the best model is weakest", "", *_weakest(doc),
             *_cards(results, out), ARREST]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="copy this evaluated run's outputs first")
    ap.add_argument("--earlier", type=Path, help="and this evaluated run of the same "
                    "configuration a year earlier (rolling origin)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the outputs' folder")
    ap.add_argument("--out", type=Path, default=OUT, help="the page to write")
    ap.add_argument("--peers", type=Path, default=PEERS, help="make peers' figures")
    ap.add_argument("--check", action="store_true", help="fail if the page is not current")
    args = ap.parse_args(argv)
    if args.run is not None:
        copy_run(args.run, args.results)
    if args.earlier is not None:
        copy_run(args.earlier, args.results / EARLIER, folders=())  # its JSON only
    page = render(args.results, args.out, args.peers)
    if args.check:
        if not args.out.exists() or args.out.read_text() != page:
            print(f"error: {args.out} is not the rendering of {args.results}; "
                  "run `make results-docs`", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(page)
    print(f"wrote {args.out} from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
