"""Exact tree SHAP of an XGBoost model, with each leaf's contributions tabled beforehand.

XGBoost's own ``pred_contribs`` walks every path of every tree for each row, O(leaves x
depth^2) per tree: for a few hundred trees of depth 7 or 8, about a thousand times the
cost of the row's prediction. Yet the path-dependent SHAP values a leaf gives a row
depend on the row only through which of the leaf's path conditions it meets (one bit per
feature on the path: Fast TreeSHAP v2, Yang 2021, arXiv:2109.09847). So the values of
every pattern of every leaf are computed once, when the model is loaded, and a row's
contributions are then one table lookup per leaf: O(leaves x depth) per tree.

For a leaf of value ``v`` whose path holds the features ``P`` (``d`` of them, repeated
splits on a feature merged), with ``z_j`` the share of the training cover that goes the
path's way at ``j``'s splits and ``A`` the features whose conditions the row meets, the
contribution of ``i`` in ``P`` is

    v (1[i in A] - z_i) sum_{S subset of A - {i}} w(|S|) prod_{j in P - S - {i}} z_j,
    w(k) = k! (d - k - 1)! / d!

the Shapley value of the leaf's expected value with the features outside a subset
averaged over the cover, as XGBoost computes it (tested against ``pred_contribs``).
"""

from __future__ import annotations

import functools
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TreeShap"]

MAX_TABLE_BYTES = 1 << 29  # 512 MiB: a leaf's table has 2^d rows (d, its path's features)
BLOCK_ROWS = 256  # rows taken through all leaves at once (their features stay in cache)


@dataclass(frozen=True, eq=False)
class TreeShap:
    """The tabled contributions of an XGBoost model's leaves.

    Build it with :meth:`from_booster`; :meth:`contributions` gives what
    ``booster.predict(DMatrix(X), pred_contribs=True)`` gives, less its bias column.
    """

    n_features: int
    leaf_path: np.ndarray  # int64, per leaf: where its path's features start
    leaf_depth: np.ndarray  # int64, per leaf: how many features its path holds
    leaf_table: np.ndarray  # int64, per leaf: where its table starts
    feature: np.ndarray  # int64, per path feature: its column
    low: np.ndarray  # float32: the row meets the path's conditions if low <= x < high
    high: np.ndarray  # float32
    missing_ok: np.ndarray  # bool: a missing value follows the path at all its splits
    table: np.ndarray  # float32: per leaf, 2^d patterns of d contributions

    @classmethod
    def from_booster(cls, booster: Any, trees: int | None = None, *,
                     max_bytes: int = MAX_TABLE_BYTES) -> TreeShap | None:
        """The tables of the first ``trees`` trees of an XGBoost booster (all if None);
        None where a tree has a categorical split or the tables would take more than
        ``max_bytes`` (deep trees): XGBoost's own ``pred_contribs`` serves those."""
        model = json.loads(booster.save_raw("json"))
        gbtree = model["learner"]["gradient_booster"]
        if "model" not in gbtree:  # dart and linear boosters
            return None
        n_features = int(model["learner"]["learner_model_param"]["num_feature"])
        leaves: list[tuple[float, list[tuple[int, float, float, bool, float]]]] = []
        for tree in gbtree["model"]["trees"][:trees]:
            if any(tree["split_type"]):
                return None
            _leaves(tree, leaves)
        if sum(4 * len(path) << len(path) for _, path in leaves) > max_bytes:
            return None
        return cls._tabled(n_features, leaves)

    @classmethod
    def _tabled(cls, n_features: int,
                leaves: list[tuple[float, list[tuple[int, float, float, bool, float]]]]
                ) -> TreeShap:
        depth = np.array([len(path) for _, path in leaves], dtype=np.int64)
        path_start = np.r_[0, np.cumsum(depth)[:-1]].astype(np.int64)
        size = depth * (1 << depth)
        table_start = np.r_[0, np.cumsum(size)[:-1]].astype(np.int64)
        flat = [c for _, path in leaves for c in path]
        columns = list(zip(*flat, strict=True)) if flat else [(), (), (), (), ()]
        zero = np.array(columns[4], dtype=np.float64)
        table = np.zeros(int(size.sum()), dtype=np.float32)
        values = np.array([v for v, _ in leaves], dtype=np.float64)
        _kernels()[0](depth, path_start, zero, values, table_start, table)
        return cls(n_features=n_features, leaf_path=path_start, leaf_depth=depth,
                   leaf_table=table_start, feature=np.array(columns[0], dtype=np.int64),
                   low=np.array(columns[1], dtype=np.float32),
                   high=np.array(columns[2], dtype=np.float32),
                   missing_ok=np.array(columns[3], dtype=np.bool_), table=table)

    @property
    def nbytes(self) -> int:
        """The memory the tables hold."""
        return sum(int(a.nbytes) for a in (self.leaf_path, self.leaf_depth, self.leaf_table,
                                           self.feature, self.low, self.high,
                                           self.missing_ok, self.table))

    def contributions(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Each row's SHAP value of each column (log-odds), for the rows of ``X`` as
        XGBoost reads them (float32, NaN missing); blocks of rows on up to ``threads``
        threads (the kernel releases the GIL)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {X.shape}")
        n = X.shape[0]
        columns = np.ascontiguousarray(X.T)  # a column's rows side by side
        out = np.zeros((self.n_features, n), dtype=np.float64)
        kernel = _kernels()[1]

        def part(start: int, stop: int) -> None:
            kernel(columns, self.leaf_path, self.leaf_depth, self.leaf_table, self.feature,
                   self.low, self.high, self.missing_ok, self.table, out, BLOCK_ROWS,
                   start, stop)

        blocks = -(-n // BLOCK_ROWS)
        threads = max(1, min(threads, blocks))
        if threads == 1:
            part(0, n)
        else:  # whole blocks per thread, each writing its own rows of ``out``
            step = -(-blocks // threads) * BLOCK_ROWS
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(part, range(0, n, step), [min(n, a + step)
                                                        for a in range(0, n, step)]))
        return out.T


def _leaves(tree: dict[str, Any],
            out: list[tuple[float, list[tuple[int, float, float, bool, float]]]]) -> None:
    """Append each leaf of an XGBoost JSON tree with its value and its path, merged per
    feature: ``(column, low, high, a missing value follows, cover share)``."""
    left, right = tree["left_children"], tree["right_children"]
    split, cond = tree["split_indices"], tree["split_conditions"]
    default_left, cover = tree["default_left"], tree["sum_hessian"]
    stack: list[tuple[int, dict[int, list[Any]]]] = [(0, {})]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            out.append((float(cond[node]), [(f, *c) for f, c in path.items()]))
            continue
        f, t = int(split[node]), float(np.float32(cond[node]))
        for child, goes_left in ((left[node], True), (right[node], False)):
            lo, hi, miss, z = path.get(f, (-math.inf, math.inf, True, 1.0))
            lo, hi = (lo, min(hi, t)) if goes_left else (max(lo, t), hi)
            share = cover[child] / cover[node] if cover[node] > 0 else 0.0
            stack.append((child, {**path, f: [lo, hi, miss and bool(default_left[node]) ==
                                              goes_left, z * share]}))


@functools.cache
def _kernels() -> tuple[Any, Any]:
    """The compiled table builder and row kernel (numba, compiled on first use)."""
    from numba import njit

    @njit(cache=False, nogil=True)
    def build(depth, path_start, zero, values, table_start, table):  # type: ignore[no-untyped-def]
        for leaf in range(depth.shape[0]):
            d = depth[leaf]
            if d == 0:
                continue
            z = zero[path_start[leaf]:path_start[leaf] + d]
            w = np.empty(d)  # the Shapley weight of a subset of k of the d features
            for k in range(d):
                w[k] = math.exp(math.lgamma(k + 1) + math.lgamma(d - k) - math.lgamma(d + 1))
            e, less = np.empty(d + 1), np.empty(d + 1)
            before, after = np.empty(d + 1), np.empty(d + 1)
            for pattern in range(1 << d):
                # the elementary symmetric sums of the met features' shares; the products
                # of the unmet ones' before and after each feature
                e[0], size, before[0] = 1.0, 0, 1.0
                for j in range(d):
                    met = (pattern >> j) & 1
                    if met:
                        size += 1
                        e[size] = 0.0
                        for m in range(size, 0, -1):
                            e[m] += z[j] * e[m - 1]
                    before[j + 1] = before[j] * (1.0 if met else z[j])
                after[d] = 1.0
                for j in range(d - 1, -1, -1):
                    after[j] = after[j + 1] * (1.0 if (pattern >> j) & 1 else z[j])
                for i in range(d):
                    met = (pattern >> i) & 1
                    n = size
                    if met:  # the sums without i: divide by (1 + z_i t)
                        n = size - 1
                        less[0] = 1.0
                        for m in range(1, n + 1):
                            less[m] = e[m] - z[i] * less[m - 1]
                    else:
                        less[:n + 1] = e[:n + 1]
                    s = 0.0
                    for m in range(n + 1):
                        s += w[n - m] * less[m]
                    table[table_start[leaf] + pattern * d + i] = (
                        values[leaf] * (met - z[i]) * s * before[i] * after[i + 1])

    @njit(cache=False, nogil=True)
    def rows(columns, path_start, depth, table_start, feature,  # type: ignore[no-untyped-def]
             low, high, missing_ok, table, out, block, start, stop):
        pattern = np.zeros(block, dtype=np.int64)
        for a in range(start, stop, block):
            b = min(stop, a + block)
            for leaf in range(depth.shape[0]):
                d, p, t = depth[leaf], path_start[leaf], table_start[leaf]
                pattern[:b - a] = 0
                for j in range(d):  # which of the path's features each row meets
                    f, lo, hi, miss = feature[p + j], low[p + j], high[p + j], missing_ok[p + j]
                    for r in range(a, b):
                        x = columns[f, r]
                        met = ((lo <= x) & (x < hi)) | (miss & (x != x))
                        pattern[r - a] |= np.int64(met) << j
                for j in range(d):
                    f = feature[p + j]
                    for r in range(a, b):
                        out[f, r] += table[t + pattern[r - a] * d + j]

    return build, rows
