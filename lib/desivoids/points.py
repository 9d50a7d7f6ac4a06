"""Orders of point sets shared by the stages that query KD-trees (environment's V2 zones,
density's k-NN)."""
from __future__ import annotations

import numpy as np

__all__ = ["spatial_order"]


def spatial_order(xyz: np.ndarray, bins: int = 128) -> np.ndarray:
    """An order of the (finite) points that visits them cell by cell of a ``bins``^3 grid over
    their bounding box: consecutive kd-tree queries (and a tree's points) then share the memory
    they touch. The points of a cell come in any order (numpy's default sort, 0.03 against a
    stable sort's 0.11 CPU s per million points): a query's answer is its own, and a tree of
    the same points gives the same distances."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    if len(xyz) < 2:
        return np.arange(len(xyz))
    lo, hi = xyz.min(0), xyz.max(0)
    ijk = ((xyz - lo) * (bins / np.maximum(hi - lo, 1e-300))).astype(np.int64)
    np.clip(ijk, 0, bins - 1, out=ijk)
    return np.argsort((ijk[:, 0] * bins + ijk[:, 1]) * bins + ijk[:, 2])
