"""RetrievalJob: a lazy training-set result; nothing runs until it is converted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class RetrievalJob:
    """The result of ``get_historical_features``; runs the join on first conversion and keeps it.

    Attributes:
        feature_names: output feature columns, in order (entity-row columns come first in the data).
    """

    def __init__(self, run: Callable[[], pa.Table], feature_names: list[str],
                 dataset: Callable[[], str | None] | None = None) -> None:
        self._run = run
        self._table: pa.Table | None = None
        self._dataset = dataset
        self.feature_names = feature_names

    @property
    def dataset_id(self) -> str | None:
        """The id of the record of exactly what this training set read (runs the job if it has not run).

        Pass it as ``get_historical_features(..., as_of=dataset_id)`` to read the same data again.
        """
        self.to_arrow()
        return self._dataset() if self._dataset is not None else None

    def to_arrow(self) -> pa.Table:
        """The training set as a pyarrow Table: entity-row columns first, then the features."""
        if self._table is None:
            self._table = self._run()
        return self._table

    def to_pandas(self) -> pd.DataFrame:
        """The training set as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    to_df = to_pandas

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to one Parquet file (atomically: a temp file renamed into place)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        pq.write_table(self.to_arrow(), tmp)
        tmp.replace(target)
        return target
