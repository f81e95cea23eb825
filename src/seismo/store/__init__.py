"""Embedded sample storage: WAL, in-memory head, Parquet blocks (see DESIGN.md "Storage")."""

from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex, SeriesInfo, SeriesLimitReached, series_id
from seismo.store.store import Snapshot, Store

__all__ = [
    "Batch", "SeriesIndex", "SeriesInfo", "SeriesLimitReached", "Snapshot", "Store", "series_id",
]
