"""Missing values → None: the one converter every layer uses for JSON, SQLite and templates.

pandas marks a missing value as ``None``, ``pd.NA``, ``pd.NaT`` or a float NaN depending on the
dtype; outside pandas only ``None`` means "missing".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def is_na(v: Any) -> bool:
    """True for None, pd.NA, pd.NaT and NaN (any float type); False for everything else."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def na_to_none(v: Any) -> Any:
    """A scalar as plain Python: missing → None, numpy scalars → their Python value."""
    if is_na(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def frame_na_to_none(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as object columns with every missing value None (for records / JSON)."""
    out = frame.astype(object)
    return out.where(out.notna(), None)
