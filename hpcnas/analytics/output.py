"""Writing command outputs: PNG figures (matplotlib, Agg), JSON and CSV files."""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.core.errors import HpcnasError


def output_dir(path: str) -> str:
    """Create ``path`` (and parents) or fail with one line."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise HpcnasError(f"cannot create output directory '{path}': {err.strerror}; "
                          "give a writable --output-dir") from None
    return path


def figure(nrows: int = 1, ncols: int = 1, width: float = 8.0, height: float = 3.2):
    """A new figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, layout="constrained")
    return fig, axes


def save_figure(fig: Any, path: str) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def time_unit(span_seconds: float) -> tuple[float, str]:
    """(divisor, unit label) for an elapsed-time axis spanning ``span_seconds``."""
    if span_seconds <= 300:
        return 1.0, "s"
    if span_seconds <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: str, data: Any) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(data), fh, indent=2)
        fh.write("\n")
    return path


def write_csv(path: str, table: pd.DataFrame | dict[str, Any],
              float_format: str | None = None) -> str:
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    df.to_csv(path, index=False, float_format=float_format)
    return path
