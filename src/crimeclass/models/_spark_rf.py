"""The random forest on Spark: MLlib's trees, rewritten node by node as scikit-learn's.

MLlib's :class:`~pyspark.ml.classification.RandomForestClassifier` is fitted on the encoded
training rows before the validation rows, with the single-machine forest's settings
(:func:`mllib_params`), every feature continuous (no categorical metadata: the category
codes and target encodings are numbers, as scikit-learn's forest reads them).

The fitted forest becomes scikit-learn's :class:`~sklearn.ensemble.RandomForestClassifier`
(:func:`to_sklearn`), saved as skops like the single-machine forest:

* MLlib writes a forest as a table of nodes (its own persistence format,
  ``model.write()``: per tree and node, in preorder, ``id``, ``impurity``,
  ``impurityStats`` (the class counts, weighted by the bootstrap), ``rawCount``,
  ``leftChild``, ``rightChild`` and the split's feature and threshold). It is written to a
  temporary folder of Spark's file system, read back by Spark as Arrow and removed: one job,
  where a call to the JVM per node would make a round trip per node.
* Each tree is a :class:`~sklearn.tree.DecisionTreeClassifier` whose ``tree_`` is set from
  the node arrays: MLlib's node ``i`` is scikit-learn's node ``i`` (the root 0), with the
  same children, feature and threshold (both go left when ``x <= threshold``, in double
  precision on the same float32 numbers).
* Each node's ``value`` is its class counts divided by their sum. MLlib's probability is the
  mean over the trees of each leaf's normalized counts; scikit-learn's forest averages each
  tree's ``value`` of the leaf: the same numbers (``tests/models/test_spark_rf.py``: at most
  1e-9 apart).

Missing values: the tree style passes numbers as they are, NaN where missing; MLlib's trees
take no NaN, and the Spark rows carry :data:`MISSING` instead (``encode_batches``'s fill,
the single-machine XGBoost's). The saved forest reads NaN: each split's
``missing_go_to_left`` is ``MISSING <= threshold``, so that a missing number takes, at every
node, the branch ``MISSING`` takes on Spark; the saved pipeline needs no fill step and
routes every row as the Spark forest does.
"""

from __future__ import annotations

import math
import tempfile
import time
import uuid
from typing import Any

import numpy as np

__all__ = ["MISSING", "MLLIB_MAX_DEPTH", "fit_forest", "fit_rf", "mllib_params", "to_sklearn"]

#: What a missing number is on Spark (``encode_batches`` fills NaN with it).
MISSING = -1.0
#: MLlib's deepest tree.
MLLIB_MAX_DEPTH = 30
#: Candidate thresholds per feature (MLlib's default is 32): every category code of up to
#: 256 categories, read as a number, keeps a split of its own (XGBoost's ``max_bin``).
MAX_BINS = 256


def mllib_params(est: Any, n_rows: int, n_features: int) -> dict[str, Any]:
    """A scikit-learn forest's settings as MLlib's RandomForestClassifier names them.

    ``max_depth`` None (no limit) or beyond 30 is MLlib's most, 30; ``max_samples``, a
    share of the rows drawn per tree, is ``subsamplingRate``; a share of rows for
    ``min_samples_leaf`` is the count it makes of ``n_rows``; ``max_features`` is the
    number of features scikit-learn draws per split of ``n_features`` (MLlib would round
    a share or a square root up, scikit-learn rounds down).
    """
    from crimeclass.models._errors import ModelOptionError

    if est.class_weight is not None or est.max_leaf_nodes is not None or est.ccp_alpha \
            or est.min_impurity_decrease:
        raise ModelOptionError("MLlib's forest has no class_weight, max_leaf_nodes, "
                               "ccp_alpha or min_impurity_decrease", option="rf")
    leaf = est.min_samples_leaf
    rate = est.max_samples
    if isinstance(rate, int | np.integer):
        rate = rate / max(n_rows, 1)
    return {
        "numTrees": int(est.n_estimators),
        "maxDepth": MLLIB_MAX_DEPTH if est.max_depth is None else min(int(est.max_depth),
                                                                       MLLIB_MAX_DEPTH),
        "minInstancesPerNode": (math.ceil(leaf * n_rows) if isinstance(leaf, float)
                                else int(leaf)),
        "minWeightFractionPerNode": float(est.min_weight_fraction_leaf),
        "featureSubsetStrategy": _max_features(est.max_features, n_features),
        "subsamplingRate": 1.0 if rate is None else min(float(rate), 1.0),
        "bootstrap": bool(est.bootstrap),
        "impurity": "gini" if est.criterion == "gini" else "entropy",
        "maxBins": MAX_BINS,
        "seed": int(est.random_state or 0),
    }


def fit_forest(vectors: Any, params: dict[str, Any], features: str = "v") -> Any:
    """MLlib's forest on ``vectors`` (a vector column ``features`` and ``label``)."""
    from pyspark.ml.classification import RandomForestClassifier

    subset = str(params["featureSubsetStrategy"])  # a number of features, as text
    return RandomForestClassifier(featuresCol=features, labelCol="label",
                                  **{**params, "featureSubsetStrategy": subset}).fit(vectors)


def forest_nodes(model: Any) -> dict[str, np.ndarray]:
    """The nodes of an MLlib forest as arrays, by tree and node id (see the module
    docstring): written by MLlib's own writer to a temporary folder, read back, removed."""
    from pyspark.sql import SparkSession

    spark = SparkSession.active()
    context: Any = spark.sparkContext
    path = f"{tempfile.gettempdir()}/crimeclass-rf-{uuid.uuid4().hex}"
    folder = context._jvm.org.apache.hadoop.fs.Path(path)  # Spark's default file system
    try:
        model.write().save(path)
        table = (spark.read.parquet(f"{path}/data").selectExpr(
            "treeID AS tree", "nodeData.id AS id", "nodeData.impurity AS impurity",
            "nodeData.impurityStats AS stats", "nodeData.rawCount AS raw_count",
            "nodeData.leftChild AS left", "nodeData.rightChild AS right",
            "nodeData.split.featureIndex AS feature",
            "nodeData.split.leftCategoriesOrThreshold AS threshold",
            "nodeData.split.numCategories AS categories").orderBy("tree", "id").toArrow())
    finally:
        folder.getFileSystem(context._jsc.hadoopConfiguration()).delete(folder, True)
    nodes = {name: table.column(name).to_numpy() for name in
             ("tree", "id", "impurity", "raw_count", "left", "right", "feature", "categories")}
    stats = table.column("stats").combine_chunks()
    nodes["stats"] = stats.flatten().to_numpy().reshape(len(table), -1)
    split = table.column("threshold").combine_chunks()
    nodes["threshold"] = np.full(len(table), np.nan)
    # a continuous split holds one number (its threshold), a leaf none
    nodes["threshold"][split.value_lengths().to_numpy() == 1] = split.flatten().to_numpy()
    return nodes


def _tree(nodes: dict[str, np.ndarray], template: Any, n_features: int) -> Any:
    """One MLlib tree's nodes (its rows of :func:`forest_nodes`, in id order) as a fitted
    DecisionTreeClassifier."""
    from sklearn.base import clone
    from sklearn.tree._tree import NODE_DTYPE, TREE_LEAF, TREE_UNDEFINED, Tree

    n = len(nodes["id"])
    if not np.array_equal(nodes["id"], np.arange(n)):
        raise ValueError("MLlib's node ids are not 0 to n - 1 in order")
    if (nodes["categories"] != -1).any():
        raise ValueError("a categorical split: the features are continuous on Spark")
    leaf = nodes["left"] < 0
    stats = nodes["stats"]
    total = stats.sum(axis=1)
    if (total <= 0).any():  # MLlib would leave such a tree out of a row's mean
        raise ValueError("a node of MLlib's forest with no weight")
    threshold = np.where(leaf, float(TREE_UNDEFINED), nodes["threshold"])
    array = np.zeros(n, dtype=NODE_DTYPE)
    array["left_child"] = np.where(leaf, TREE_LEAF, nodes["left"])
    array["right_child"] = np.where(leaf, TREE_LEAF, nodes["right"])
    array["feature"] = np.where(leaf, TREE_UNDEFINED, nodes["feature"])
    array["threshold"] = threshold
    array["impurity"] = nodes["impurity"]
    array["n_node_samples"] = nodes["raw_count"]
    array["weighted_n_node_samples"] = total
    array["missing_go_to_left"] = ~leaf & (threshold >= MISSING)
    tree = Tree(n_features, np.array([stats.shape[1]], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": _depth(array), "node_count": n, "nodes": array,
                       "values": np.ascontiguousarray((stats / total[:, None])[:, None, :])})
    est = clone(template)
    est.n_features_in_ = n_features
    est.n_outputs_ = 1
    est.classes_ = np.arange(stats.shape[1])
    est.n_classes_ = stats.shape[1]
    est.max_features_ = _max_features(template.max_features, n_features)
    est.tree_ = tree
    return est


def _depth(nodes: np.ndarray) -> int:
    """The depth of a tree from its children: the levels below the root."""
    depth, level = 0, np.array([0])
    while True:
        children = np.concatenate([nodes["left_child"][level], nodes["right_child"][level]])
        level = children[children >= 0]
        if not len(level):
            return depth
        depth += 1


def _max_features(max_features: Any, n_features: int) -> int:
    """The features each split draws, as scikit-learn's forest sets ``max_features_``."""
    if max_features is None:
        return n_features
    if max_features == "sqrt":
        return max(1, int(np.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(np.log2(n_features)))
    if isinstance(max_features, float):
        return max(1, int(max_features * n_features))
    return int(max_features)


def to_sklearn(model: Any, est: Any, n_features: int) -> Any:
    """Set the trees of MLlib's fitted forest ``model`` on scikit-learn's forest ``est``
    (unfitted, with the settings ``model`` was fitted with); return ``est``."""
    from sklearn.tree import DecisionTreeClassifier

    nodes = forest_nodes(model)
    template = DecisionTreeClassifier(
        **{name: getattr(est, name) for name in est.estimator_params})
    starts = np.flatnonzero(np.diff(nodes["tree"], prepend=-1))
    ends = [*starts[1:], len(nodes["tree"])]
    trees = [_tree({k: v[a:b] for k, v in nodes.items()}, template, n_features)
             for a, b in zip(starts, ends, strict=True)]
    if len(trees) != model.getNumTrees:
        raise ValueError(f"{len(trees)} trees read of MLlib's {model.getNumTrees}")
    est.estimator_ = template
    est.estimators_ = trees
    est.n_features_in_ = n_features
    est.n_outputs_ = 1
    est.classes_ = trees[0].classes_
    est.n_classes_ = trees[0].n_classes_
    return est


def fit_rf(data: Any, train: Any, config: Any, num_workers: int, emit: Any,
           search: Any = None) -> Any:
    """Fit the random forest of a Spark run (see the module docstring)."""
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql.functions import col

    from crimeclass.models._spark_train import _encoded, _scored

    t0 = time.perf_counter()
    best = search.params if search else None  # the search's, on the driver's sample
    with _encoded("rf", data, train, config, best) as (pipeline, columns, rows):
        est = pipeline.steps[-1][1]
        params = mllib_params(est, len(data.X), len(columns))
        emit("stage", {"text": f"rf: MLlib random forest on Spark ({params['numTrees']} "
                               f"trees, {len(data.X):,} rows)"})
        vectors = rows.withColumn("v", array_to_vector(col("features")))
        model = fit_forest(vectors.where("NOT _val"), params)
        val = model.transform(vectors.where("_val")).select(
            "label", vector_to_array(col("probability"))[1].alias("p")).toArrow()
    to_sklearn(model, est, len(columns))
    fitted = _scored("rf", pipeline, data, config, val, params, time.perf_counter() - t0)
    fitted.entry["trees"] = {"nodes": int(sum(t.tree_.node_count for t in est.estimators_)),
                             "max_depth": int(max(t.tree_.max_depth for t in est.estimators_))}
    return fitted
