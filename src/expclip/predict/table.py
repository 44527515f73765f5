"""Prediction rows as a table: their column order, and what ``ExpCLIP.predict`` returns (a pandas DataFrame, or a
plain list of dicts with a column order when pandas is not installed)."""

from __future__ import annotations

from typing import Iterable, Sequence

# What a row holds when no face is found: the whole image scored, or the row left unscored (no torch needed to
# name them: the CLI's --help shows them).
NO_FACE_MODES = ("whole", "skip")

BASE_COLUMNS = ("input", "kind", "frame", "timestamp", "face", "track", "num_faces", "face_detected",
                "box_x", "box_y", "box_w", "box_h", "face_score", "label", "score")
# Live sources' rows also say when (wall clock) and, for window rows, which stretch of the stream they pool.
STREAM_COLUMNS = ("window_start", "window_frames", "wall_time")


def prob_column(label: str) -> str:
    return f"p_{label}"


def result_columns(labels: Sequence[str], stream: bool = False) -> list[str]:
    """Column order of prediction rows for these labels (``stream``: a live source's, with window columns)."""
    return [*BASE_COLUMNS, *(STREAM_COLUMNS if stream else ()), *(prob_column(c) for c in labels), "error"]


class PredictionTable(list):
    """Prediction rows (dicts) with a column order; what ``predict`` returns when pandas is not installed."""

    def __init__(self, rows: Iterable[dict], columns: Sequence[str]):
        super().__init__(rows)
        self.columns = list(columns)

    def column(self, name: str) -> list:
        return [r.get(name) for r in self]

    def to_pandas(self):
        """A DataFrame with nullable integer/boolean columns (image rows have no frame, clip rows no box...)."""
        import pandas as pd

        df = pd.DataFrame(list(self), columns=self.columns)
        ints = [c for c in INT_COLUMNS if c in df.columns]
        floats = [c for c in ("timestamp", "window_start", "face_score", "score") if c in df.columns]
        return df.astype({**{c: "Int64" for c in ints}, "face_detected": "boolean", **{c: "float64" for c in floats}})


INT_COLUMNS = ("frame", "face", "track", "num_faces", "box_x", "box_y", "box_w", "box_h", "window_frames")


def make_table(rows: list[dict], columns: Sequence[str], as_frame: bool | None = None):
    """A pandas DataFrame (``as_frame`` True, or None and pandas importable), else a :class:`PredictionTable`."""
    table = PredictionTable(({c: r.get(c) for c in columns} for r in rows), columns)
    if as_frame is False:
        return table
    try:
        return table.to_pandas()
    except ImportError:
        if as_frame:
            raise
        return table
