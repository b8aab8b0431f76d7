"""The feature frame: the feature query's Arrow result as the pandas frame models read.

Categories become pandas ``category`` (categories sorted) and numbers float32, the same
types in training, batch prediction and the scoring service.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crimeclass.features._catalog import Feature, FeatureSpec, feature_catalog

__all__ = ["feature_frame"]


def frame_types(df: pd.DataFrame, feats: list[Feature]) -> pd.DataFrame:
    """Categories as pandas ``category`` (compact, categories sorted), numbers as float32
    with NaN."""
    dtypes = dict(zip(df.columns, df.dtypes, strict=True))  # a column is read only to change
    for f in feats:
        dtype = dtypes[f.name]
        if f.kind in ("category", "high_cardinality"):
            if not isinstance(dtype, pd.CategoricalDtype):
                df[f.name] = df[f.name].astype("category")
                dtype = df[f.name].dtype
            if not dtype.categories.is_monotonic_increasing:
                df[f.name] = df[f.name].cat.reorder_categories(dtype.categories.sort_values())
        elif dtype != np.float32:
            df[f.name] = df[f.name].astype("float32")
    return df


def _sorted_codes(column: Any) -> Any:
    """A text column dictionary-encoded, its dictionary sorted where it has one chunk (a
    request's rows: pandas then has no categories to reorder)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray) and encoded.num_chunks != 1:
        return encoded
    chunk = encoded.chunk(0) if isinstance(encoded, pa.ChunkedArray) else encoded
    order = pc.array_sort_indices(chunk.dictionary)
    position = pc.array_sort_indices(order)  # the sorted position of each old code
    return pa.DictionaryArray.from_arrays(pc.take(position, chunk.indices).cast(pa.int32()),
                                          pc.take(chunk.dictionary, order))


def feature_frame(data: Any, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """A feature frame from the Arrow result of :func:`feature_sql` (or its DataFrame).

    Categories become pandas ``category`` and numbers float32, as in
    :func:`read_features`, so that a model sees the same types in training
    and in batch prediction.
    """
    feats = feature_catalog(spec or FeatureSpec())
    if not hasattr(data, "to_pandas"):
        return frame_types(data.copy(), feats)
    if hasattr(data, "set_column") and hasattr(data, "schema"):  # a pyarrow Table
        import pyarrow as pa

        # categories dictionary-encoded by Arrow come out as pandas categories directly,
        # without a column of Python strings in between
        for f in feats:
            if f.kind in ("category", "high_cardinality") and f.name in data.schema.names:
                i = data.schema.get_field_index(f.name)
                if not pa.types.is_dictionary(data.schema.field(i).type):
                    data = data.set_column(i, f.name, _sorted_codes(data.column(i)))
        # one block per column, and Arrow's buffers released as they are converted: the
        # table and the frame are never both whole in memory
        return frame_types(data.to_pandas(split_blocks=True, self_destruct=True), feats)
    return frame_types(data.to_pandas(), feats)
