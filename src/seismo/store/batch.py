"""A batch of samples: parallel numpy arrays, the unit every stage of the data path works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Batch:
    """Samples as columns: `slots` index in-memory arrays, `sids` are the stable series ids."""

    slots: np.ndarray  # int32
    sids: np.ndarray  # int64
    ts: np.ndarray  # int64, ms since epoch
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        if len(batches) == 1:
            return batches[0]
        return Batch(
            np.concatenate([b.slots for b in batches]),
            np.concatenate([b.sids for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.values for b in batches]),
        )
