"""MLlib's random forest rewritten node by node as scikit-learn's: the same probabilities."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import RandomForestClassifier

from crimeclass.features import feature_catalog
from crimeclass.models import ModelOptionError, make_model
from crimeclass.models._spark_rf import MISSING, fit_forest, mllib_params, to_sklearn
from crimeclass.models._spark_train import ENCODER_FOLDS, encode_batches
from tests.models.conftest import SPEC


@pytest.fixture(scope="module")
def forest(spark, sample_frame) -> dict[str, object]:
    """The rf pipeline's forest grown by MLlib on the sample's 2014-2016 rows, encoded as on
    Spark (``encode_batches``: missing numbers as MISSING), and converted."""
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql.functions import col

    rows = sample_frame[(sample_frame["date"] >= "2014-01-01")
                        & (sample_frame["date"] < "2017-01-01")].reset_index(drop=True)
    cols = ["date", *[f.name for f in feature_catalog(SPEC)]]
    y = rows["is_index"].to_numpy().astype(int)
    pipeline = make_model("rf", feature_catalog(SPEC), n_jobs=1)
    prep = pipeline[:-1].fit(rows[cols], y)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.append_column("_val", pa.array(np.zeros(len(rows), dtype=bool)))
    shared = spark.sparkContext.broadcast([prep] * ENCODER_FOLDS)  # the same in every fold
    encoded = pa.Table.from_batches(list(encode_batches(table.to_batches(), shared, SPEC,
                                                        "is_index")))
    encoded = encoded.append_column("i", pa.array(np.arange(len(rows))))
    vectors = spark.createDataFrame(encoded).withColumn("v", array_to_vector(col("features")))
    est = pipeline.steps[-1][1]
    n_features = len(prep[-1].get_feature_names_out())
    model = fit_forest(vectors, mllib_params(est, len(rows), n_features))
    to_sklearn(model, est, n_features)
    mllib = model.transform(vectors).select(
        "i", vector_to_array(col("probability"))[1].alias("p")).orderBy("i").toArrow()
    return {"model": model, "pipeline": pipeline, "X": rows[cols], "y": y,
            "p_mllib": mllib.column("p").to_numpy(),
            "encoded": np.asarray(prep.transform(rows[cols]), dtype=np.float32)}


@pytest.mark.slow
def test_the_converted_forest_gives_mllibs_probabilities(forest):
    p = forest["pipeline"].predict_proba(forest["X"])[:, 1]  # type: ignore[attr-defined]
    mllib = forest["p_mllib"]
    np.testing.assert_allclose(p, mllib, rtol=0, atol=1e-9)
    # rows with missing numbers (NaN for scikit-learn, MISSING on Spark), routed alike
    missing = np.isnan(forest["encoded"]).any(axis=1)  # type: ignore[call-overload]
    assert 0 < missing.sum() < len(missing)
    np.testing.assert_allclose(p[missing], mllib[missing], rtol=0, atol=1e-9)
    assert np.std(p) > 0.05  # trees that split, not one leaf


@pytest.mark.slow
def test_missing_numbers_take_the_branch_of_the_fill_value(forest):
    """Without ``missing_go_to_left`` set from the fill value, the rows with missing numbers
    would score otherwise: the rule is what makes them equal."""
    est = forest["pipeline"].steps[-1][1]  # type: ignore[attr-defined]
    X = forest["encoded"]
    filled = np.where(np.isnan(X), np.float32(MISSING), X)  # type: ignore[call-overload]
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(filled))
    for tree in est.estimators_:  # every split sends a missing number where MISSING goes
        state = tree.tree_.__getstate__()
        split = state["nodes"]["left_child"] >= 0
        left = state["nodes"]["missing_go_to_left"][split].astype(bool)
        np.testing.assert_array_equal(left, state["nodes"]["threshold"][split] >= MISSING)
    flipped = _flip_missing(est)
    assert np.abs(flipped.predict_proba(X) - est.predict_proba(X)).max() > 1e-3


def _flip_missing(est):
    """A copy of ``est`` whose splits send missing numbers the other way."""
    import copy

    other = copy.deepcopy(est)
    for tree in other.estimators_:
        state = tree.tree_.__getstate__()
        nodes = state["nodes"].copy()
        split = nodes["left_child"] >= 0
        nodes["missing_go_to_left"][split] = 1 - nodes["missing_go_to_left"][split]
        tree.tree_.__setstate__({**state, "nodes": nodes})
    return other


@pytest.mark.slow
def test_the_trees_are_those_mllib_grew(forest):
    model = forest["model"]
    est = forest["pipeline"].steps[-1][1]  # type: ignore[attr-defined]
    assert len(est.estimators_) == model.getNumTrees == 100  # type: ignore[attr-defined]
    for tree, grown in zip(est.estimators_, model.trees, strict=True):  # type: ignore[attr-defined]
        assert tree.tree_.node_count == grown.numNodes
        assert tree.tree_.max_depth == grown.depth <= 20
        assert tree.get_n_leaves() == (grown.numNodes + 1) // 2
    # grown on a fifth of the rows drawn per tree, leaves of 10 rows at least
    leaves = [t.tree_.n_node_samples[t.tree_.children_left < 0] for t in est.estimators_]
    assert min(min(n) for n in leaves) >= 10
    assert max(t.tree_.n_node_samples[0] for t in est.estimators_) < 0.3 * len(forest["y"])


def test_the_single_machine_settings_in_mllibs_names():
    est = make_model("rf", feature_catalog(SPEC)).steps[-1][1]
    assert mllib_params(est, 1000, 37) == {
        "numTrees": 100, "maxDepth": 20, "minInstancesPerNode": 10,
        "minWeightFractionPerNode": 0.0, "featureSubsetStrategy": 11,  # 0.3 x 37, down
        "subsamplingRate": 0.2, "bootstrap": True, "impurity": "gini", "maxBins": 256,
        "seed": 0}
    deep = mllib_params(RandomForestClassifier(max_depth=None, max_features="sqrt",
                                               max_samples=500, min_samples_leaf=0.01,
                                               random_state=3), 1000, 37)
    assert deep["maxDepth"] == 30 and deep["featureSubsetStrategy"] == 6  # sqrt(37), down
    assert deep["subsamplingRate"] == 0.5 and deep["minInstancesPerNode"] == 10
    assert deep["seed"] == 3
    with pytest.raises(ModelOptionError, match="class_weight"):
        mllib_params(RandomForestClassifier(class_weight="balanced"), 1000, 37)
    for given, drawn in ((None, 37), (1.0, 37), (1, 1), ("log2", 5), (0.5, 18)):
        forest = RandomForestClassifier(max_features=given)
        assert mllib_params(forest, 1000, 37)["featureSubsetStrategy"] == drawn


def test_encoded_rows_carry_the_recency_weights_of_one_machine(spark, sample_frame):
    """Spark's XGBoost is weighted as :class:`RecencyPipeline` weighs on one machine."""
    from crimeclass.models import recency_weights

    rows = sample_frame[(sample_frame["date"] >= "2016-01-01")
                        & (sample_frame["date"] < "2017-01-01")].reset_index(drop=True)
    cols = ["date", *[f.name for f in feature_catalog(SPEC)]]
    prep = make_model("xgb", feature_catalog(SPEC), n_jobs=1)[:-1].fit(
        rows[cols], rows["is_index"].to_numpy().astype(int))
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.append_column("_val", pa.array(np.zeros(len(rows), dtype=bool)))
    shared = spark.sparkContext.broadcast([prep] * ENCODER_FOLDS)
    batches = table.to_batches(max_chunksize=500)  # partitions: each counts from the latest
    weighted = pa.Table.from_batches(list(encode_batches(
        batches, shared, SPEC, "is_index", recency=(rows["date"].max(), 365.0))))
    np.testing.assert_allclose(weighted.column("weight").to_numpy(),
                               recency_weights(rows["date"], 365.0), rtol=1e-12)
    plain = pa.Table.from_batches(list(encode_batches(batches, shared, SPEC, "is_index")))
    assert (plain.column("weight").to_numpy() == 1).all()
