"""The models' commands: train, predict, evaluate."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from crimeclass.cli._common import (
    JsonOpt,
    SeedOpt,
    StoreOpt,
    check_memory_limit,
    handles_errors,
    print_json,
)
from crimeclass.cli._common import store_path as _store_path
from crimeclass.cli._render import (
    NoProgress,
    console,
    err_console,
    model_done_line,
    prediction_lines,
    print_comparison,
    print_evaluation,
    progress,
)


class CVChoice(StrEnum):
    """Cross-validation inside the training period."""

    time = "time"
    stratified = "stratified"


class TargetChoice(StrEnum):
    """What the classifiers predict (a member named ``index`` would hide ``str.index``)."""

    index_offense = "index"
    arrest = "arrest"


class EngineChoice(StrEnum):
    """Where predict and train run."""

    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[EngineChoice, typer.Option(
    help="duckdb: one machine, the store; spark: Apache Spark, a Parquet input (--input).")]
MasterOpt = Annotated[str, typer.Option(
    help="With --engine spark: the Spark master (local[*], local[2], yarn, spark://host:7077).")]
SparkInputOpt = Annotated[str | None, typer.Option(
    "--input", help="With --engine spark: the incidents as Parquet in the canonical schema "
                    "(crimeclass export), a path or a URI Spark reads (file:, s3a:, abfss:, gs:).",
    show_default=False)]


class ThresholdRule(StrEnum):
    """Where each model's decision threshold comes from."""

    run = "run"
    f1 = "f1"
    precision = "precision"


def _train_events(bars: Any, as_json: bool) -> Any:
    """Progress of a training run: a bar per model, with its best CV score so far.

    Where no bars are shown (stderr is no terminal: a pipe, a file), a line per model
    as it finishes says how long it took and its held-out ROC AUC.
    """
    tasks: dict[str, Any] = {}
    best: dict[str, float] = {}
    lines = not as_json and isinstance(bars, NoProgress)

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind == "stage" and not as_json:
            err_console.print(f"[dim]{info['text']}[/]")
        elif kind == "model_done" and lines:
            err_console.print(model_done_line(info), highlight=False)
        elif kind == "model":
            tasks[info["name"]] = bars.add_task(info["name"], total=info["trials"])
        elif kind == "trial":
            name = info["name"]
            if info["value"] is not None and info["state"] == "complete":
                best[name] = max(best.get(name, float("-inf")), info["value"])
            label = f"{name} (best CV {best[name]:.4f})" if name in best else name
            bars.update(tasks[name], completed=info["done"], description=label)

    return on_event


@handles_errors
def train(
    models: Annotated[str | None, typer.Option(
        help="Models to train, comma-separated: lr, rf, svm, xgb, nn, lgbm (LightGBM), "
             "stack (lr, xgb and lgbm stacked in time order; index target) (the baselines "
             "majority and location_rate, and type_rate for the arrest target, are "
             "added). Default: every family the target allows (lr, rf, svm, xgb, nn, "
             "lgbm, and stack for the index target), so that the run's best is the best "
             "there is. With --engine spark: xgb, lr, svm, rf, nn.")] = None,
    target: Annotated[TargetChoice, typer.Option(
        help="index: an index offense (the offense type is never a feature); arrest: an "
             "arrest was made (the offense type is a feature, arrest never).")] = (
        TargetChoice.index_offense),
    cv: Annotated[CVChoice, typer.Option(
        help="time: train on earlier periods, validate on the next; stratified: shuffled "
             "k-fold.")] = CVChoice.time,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 3,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per model.")] = 20,
    since: Annotated[str | None, typer.Option(
        help="First day of the data window (YYYY-MM-DD); the store's first by default.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the data window (YYYY-MM-DD, excluded).")] = None,
    holdout: Annotated[str, typer.Option(
        help="Held-out period, never used for tuning: auto (latest complete year), 2017, "
             "2017-06 or START:END.")] = "auto",
    sample: Annotated[int | None, typer.Option(
        min=1, help="Train on this many training rows, drawn at random (seeded).")] = None,
    search_sample: Annotated[int, typer.Option(
        min=0, help="Rows the hyperparameter search sees (0: all training rows); the best "
                    "parameters are refitted on all training rows.")] = 50_000,
    final_sample: Annotated[int, typer.Option(
        min=0, help="Training rows on which the search's best meets the model's defaults "
                    "before the refit; the defaults are kept when they score at least as "
                    "well (0: no final round).")] = 1_000_000,
    half_life: Annotated[float, typer.Option(
        min=0, help="Recency weights, in days: a training row this much older than the "
                    "latest weighs half as much (XGBoost, LightGBM, the stack's bases; 0: "
                    "every row alike).")] = 365.0,
    runs_dir: Annotated[Path, typer.Option(help="Where runs/<run-id>/ is written.")] = Path(
        "runs"),
    seed: SeedOpt = 0,
    allow_arrest: Annotated[bool, typer.Option(
        "--allow-arrest", help="Use Arrest as a feature. It is recorded AFTER the report: "
                               "every output of the run says so.")] = False,
    baselines: Annotated[bool, typer.Option(
        help="Add the majority-class and location-rate baselines.")] = True,
    n_jobs: Annotated[int | None, typer.Option(
        help="Threads for random forest and XGBoost (all cores by default).")] = None,
    timeout: Annotated[float | None, typer.Option(
        min=0, help="Seconds after which a model's search starts no new trial.")] = None,
    memory_limit: Annotated[str, typer.Option(
        callback=check_memory_limit, help="DuckDB memory limit while computing the features "
                                          "(beyond it DuckDB spills to disk).")] = "3GB",
    store: StoreOpt = None,
    engine: EngineOpt = EngineChoice.duckdb,
    master: MasterOpt = "local[*]",
    spark_input: SparkInputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train, tune and compare the classifiers of a target; write runs/<run-id>/.

    The target is an index offense (default) or an arrest. Features are those
    known when an incident is reported; the latest complete
    year is held out and never used for tuning. The run folder holds the config,
    a fingerprint of the data, metrics.json, a comparison table (comparison.md,
    report.html) and every fitted model in a safe format.
    """
    from crimeclass.models import TrainConfig, parse_model_names
    from crimeclass.models import train as run_training

    if engine is EngineChoice.spark and models is None:
        from crimeclass.models import SPARK_MODELS

        models = ",".join(SPARK_MODELS)  # the models Spark trains, unless others are named
    config = TrainConfig(
        models=tuple(parse_model_names(models)) if models else None, baselines=baselines,
        cv=cv.value, folds=folds, trials=trials, since=since, until=until, holdout=holdout,
        sample=sample, search_sample=search_sample or None,
        final_sample=final_sample or None, half_life_days=half_life or None, seed=seed,
        allow_arrest=allow_arrest,
        target=target.value, n_jobs=n_jobs, timeout=timeout, memory_limit=memory_limit)
    if allow_arrest and not as_json:
        err_console.print("[bold yellow]warning:[/] --allow-arrest: Arrest is recorded after "
                          "the report; these models will not predict at report time.")
    with progress(as_json) as bars:
        if engine is EngineChoice.spark:
            result = _train_spark(spark_input, store, config, runs_dir, master,
                                  _train_events(bars, as_json))
        elif spark_input is not None:
            raise typer.BadParameter("--input is read by --engine spark; on one machine "
                                     "train on a store (--store)", param_hint="'--input'")
        else:
            result = run_training(_store_path(store), config, runs_dir=runs_dir,
                                  on_event=_train_events(bars, as_json))
    if as_json:
        print_json(train_summary(result))
        return
    print_comparison(result.metrics)
    console.print(f"run: {result.run_dir}  (report.html, metrics.json, models/)")


def _train_spark(spark_input: str | None, store: Path | None, config: Any, runs_dir: Path,
                 master: str, on_event: Any) -> Any:
    """``crimeclass train --engine spark``: XGBoost, MLlib's logistic regression, linear
    SVM and random forest on Spark from a Parquet input (the network on the driver's
    sample)."""
    from crimeclass.models import spark_train

    if spark_input is None:
        raise typer.BadParameter("--engine spark needs the incidents to train on (Parquet: a "
                                 "path or URI)", param_hint="'--input'")
    if store is not None:
        raise typer.BadParameter("--engine spark reads Parquet (--input), not a store",
                                 param_hint="'--store'")
    return spark_train(spark_input, config, runs_dir=runs_dir, master=master,
                       on_event=on_event)


def train_summary(result: Any) -> dict[str, Any]:
    """``crimeclass train --json``: the run folder, its window and each model's metrics."""
    metrics = result.metrics
    return {
        "run_dir": str(result.run_dir), "best_model": metrics["best_model"],
        "primary_metric": metrics["primary_metric"], "target": metrics["target"],
        "allow_arrest": metrics["allow_arrest"],
        "holdout": metrics["holdout"], "train": metrics["train"],
        "models": [{"name": m["name"], "baseline": m["baseline"], "cv_mean": m["cv"]["mean"],
                    **{k: m["metrics"][k] for k in ("roc_auc", "average_precision",
                                                    "log_loss", "brier", "f1")}}
                   for m in metrics["models"]]}


def _predict_events(bars: Any, as_json: bool) -> Any:
    """Progress of a batch prediction: a bar per file read, and one for scoring."""
    tasks: dict[str, Any] = {}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind == "stage" and not as_json:
            err_console.print(f"[dim]{info['text']}[/]", highlight=False)
        elif kind == "ingest":
            name = "read " + Path(info["file"]).name
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=info["total"])
            bars.update(tasks[name], completed=info["done"])
        elif kind == "score":
            if "score" not in tasks:
                tasks["score"] = bars.add_task("score", total=info["total"])
            bars.update(tasks["score"], completed=info["done"])

    return on_event


@handles_errors
def predict(
    run: Annotated[Path, typer.Option(help="The run folder (runs/<run-id>).",
                                      show_default=False)],
    out: Annotated[str, typer.Option(help="Output file, .csv or .parquet; bad input rows go "
                                          "to OUT.quarantine.csv. With --engine spark: a "
                                          "Parquet folder (a path or URI).",
                                     show_default=False)],
    inputs: Annotated[list[Path] | None, typer.Argument(
        metavar="[INPUT]...", help="CSV, CSV.gz or Parquet files or folders (any export "
                                   "ingest reads), or a store (.duckdb). Omitted: the "
                                   "incidents of --store.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        help="A model of the run (lr, xgb, ...); the run's best by default.")] = None,
    store: Annotated[Path | None, typer.Option(
        "--store", envvar="CRIMECLASS_STORE",
        help="History store ($CRIMECLASS_STORE): the history features count its incidents before "
                        "each input row. Without it, only the input's own earlier rows "
                        "(marked history_complete=false in the output).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Store input only: first day to score (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Store input only: day after the last to score (excluded).")] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time.")] = 100_000,
    memory_limit: Annotated[str, typer.Option(
        callback=check_memory_limit,
        help="DuckDB memory limit (features, reading); it spills to disk beyond.")] = "1GB",
    verify_key: Annotated[Path | None, typer.Option(
        help="A public key (PEM): refuse the run unless it is signed with the matching "
             "private key (crimeclass sign) and unchanged since.", show_default=False)] = None,
    engine: EngineOpt = EngineChoice.duckdb,
    master: MasterOpt = "local[*]",
    spark_input: SparkInputOpt = None,
    history: Annotated[str | None, typer.Option(
        help="With --engine spark: Parquet of earlier incidents the history features count "
             "(as --store on one machine).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score incidents with a saved model of a run; write ID, probability, label, model id.

    Input rows are validated exactly as by ingest; bad rows are quarantined
    beside the output. The output is written under a temporary name and
    renamed when complete. With --engine spark, a Parquet input (--input) is scored
    on Spark into a Parquet folder (OUT) with the same columns (docs/spark.md).
    """
    from crimeclass.models import PredictOptions
    from crimeclass.models import predict as run_predict

    _verify(run, verify_key)
    if engine is EngineChoice.spark:
        _check_spark_predict(inputs, store, since, until)
        _predict_spark(run, spark_input, out, model, history, master, as_json)
        return
    for given, name in ((spark_input, "--input"), (history, "--history")):
        if given is not None:
            raise typer.BadParameter(f"{name} is read by --engine spark; on one machine give "
                                     "INPUT files and a history store (--store)",
                                     param_hint=f"'{name}'")
    if not inputs:
        if store is None:
            raise ValueError("nothing to score: give INPUT files or a store, or --store")
        inputs = [store]
    options = PredictOptions(chunk_rows=chunk_rows, memory_limit=memory_limit, since=since,
                             until=until)
    with progress(as_json) as bars:
        result = run_predict(run, inputs, Path(out), model_name=model, history_store=store,
                             options=options, on_event=_predict_events(bars, as_json))
    if as_json:
        print_json(result.to_dict())
        return
    for line in prediction_lines(result):
        console.print(line, highlight=False)
    if result.history == "input":
        err_console.print(
            "[bold yellow]warning:[/] no history store (--store): history features count the "
            f"input's own earlier rows only; {result.history_incomplete:,} rows have less "
            "history than the model was trained with (history_complete=false).")
    elif result.history_incomplete:
        console.print(f"[dim]{result.history_incomplete:,} rows have less earlier data "
                      "without a gap than the lookback (history_complete=false)[/]")


def _check_spark_predict(inputs: list[Path] | None, store: Path | None, since: str | None,
                         until: str | None) -> None:
    """The options of the single-machine predict that --engine spark does not read."""
    if inputs:
        raise typer.BadParameter("--engine spark reads one Parquet input given with --input, "
                                 "not INPUT arguments", param_hint="'--input'")
    if store is not None:
        raise typer.BadParameter("--engine spark reads its history from Parquet (--history), "
                                 "not a store", param_hint="'--store'")
    if since or until:
        raise typer.BadParameter("--engine spark scores its input whole",
                                 param_hint="'--since/--until'")


def _predict_spark(run: Path, spark_input: str | None, out: str, model: str | None,
                   history: str | None, master: str, as_json: bool) -> None:
    """``crimeclass predict --engine spark``: the input scored on Spark into a Parquet folder."""
    from crimeclass.models import spark_predict

    if spark_input is None:
        raise typer.BadParameter("--engine spark needs the incidents to score (Parquet: a "
                                 "path or URI)", param_hint="'--input'")
    if not as_json:
        err_console.print(f"[dim]scoring {spark_input} on Spark ({master})[/]", highlight=False)
    result = spark_predict(run, spark_input, out, model_name=model, history=history,
                           master=master)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"{result.scored:,} incidents scored by {result.model_id} on Spark "
                  f"({result.master}; target {result.target}, threshold "
                  f"{result.threshold:.3f}): {result.positives:,} labeled positive; "
                  f"{result.seconds:.1f} s  ->  {result.out}", highlight=False)
    if result.history_incomplete:
        err_console.print(
            f"[bold yellow]warning:[/] {result.history_incomplete:,} rows have less earlier "
            "data than the lookback (history_complete=false)"
            + ("" if history else "; give earlier incidents with --history"))


@handles_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run folder written by crimeclass train (runs/<run-id>).")],
    data: Annotated[Path | None, typer.Option(
        help="Score other data: a store, or CSV / Parquet files or a folder that ingest "
             "reads (validated and quarantined as by ingest, into a temporary store). "
             "Default: the run's own held-out period.")] = None,
    since: Annotated[str | None, typer.Option(
        help="First day of the window (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the window (YYYY-MM-DD, excluded).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the evaluation (default: RUN/evaluation, or "
             "RUN/evaluations/<time> with --data).")] = None,
    threshold_rule: Annotated[ThresholdRule, typer.Option(
        help="run: each model's threshold from training (best F1 on validation folds); f1 "
             "or precision: chosen again on validation data, never on the evaluated rows."
    )] = ThresholdRule.run,
    target_precision: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="With --threshold-rule precision: the precision to reach.")
    ] = None,
    n_boot: Annotated[int, typer.Option(min=10, help="Bootstrap replicates.")] = 1000,
    explain_rows: Annotated[int, typer.Option(
        min=0, help="Rows for permutation importance (seeded subsample; 0: no explanations)."
    )] = 20_000,
    seed: Annotated[int, typer.Option(
        min=0, help="Seeds the bootstrap and the subsamples.")] = 0,
    store: Annotated[Path | None, typer.Option(
        help="The store the run was trained on, where it is no longer where the run "
             "recorded it (default: the run's own record).", show_default=False)] = None,
    verify_key: Annotated[Path | None, typer.Option(
        help="A public key (PEM): refuse the run unless it is signed with the matching "
             "private key (crimeclass sign) and unchanged since.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a training run: metrics with intervals, calibration, slices, explanations.

    Writes evaluation.json, evaluation.md, evaluation.html (with the plots) and a model
    card per model into one folder, atomically; evaluating the run's own held-out period
    also writes models/<name>/model_card.md into the run.
    """
    from crimeclass._api import evaluate as run_evaluation
    from crimeclass.evaluation import check_roc_sanity

    _verify(run_dir, verify_key)
    if threshold_rule is ThresholdRule.precision and target_precision is None:
        raise typer.BadParameter("a value is needed with --threshold-rule precision",
                                 param_hint="'--target-precision'")
    with progress(as_json) as bars:
        task = bars.add_task("evaluating", total=None)

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "stage":
                bars.update(task, description=info["text"], total=None, completed=0)
            elif kind == "step":
                bars.update(task, description=info["text"], total=info["total"],
                            completed=info["done"])

        result = run_evaluation(run_dir, data=data, since=since, until=until, out=out,
                                threshold_rule=threshold_rule.value,
                                target_precision=target_precision, n_boot=n_boot,
                                explain_rows=explain_rows, seed=seed, on_event=on_event,
                                store=store)
    if as_json:
        print_json(result.summary())
        return
    print_evaluation(result.doc)
    for warning in check_roc_sanity(result.doc):
        err_console.print(f"[bold yellow]warning:[/] {warning}")
    console.print(f"evaluation: {result.out}  (evaluation.html, evaluation.md, evaluation.json, "
                  "model_cards/)")


def _verify(run: Path, public_key: Path | None) -> None:
    """With --verify-key: the run's signature, checked before anything of it is loaded."""
    if public_key is not None:
        from crimeclass.models import verify_run

        verify_run(run, public_key)


@handles_errors
def sign(
    run: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run folder written by crimeclass train (runs/<run-id>).")],
    key: Annotated[Path, typer.Option(
        help="The private key (PEM, elliptic curve) to sign with; nothing goes online.",
        show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Sign every file of a run (OpenSSF model-signing, a local key pair) into RUN/run.sig.

    Sign after evaluate (it writes model cards into the run). predict, evaluate and
    serve then refuse the run with --verify-key PUBLIC.pem unless the signature
    matches and no file was added, removed or changed.
    """
    from crimeclass.models import sign_run

    signature = sign_run(run, key)
    if as_json:
        print_json({"run": str(run), "signature": str(signature)})
    else:
        console.print(f"signed {run}: {signature}", highlight=False)
