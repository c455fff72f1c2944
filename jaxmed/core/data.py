"""Seeded, resumable grain pipelines indexed by training step.

A pipeline is a ``grain.MapDataset`` of *global* batches with random access:
``dataset[step]`` is the batch for ``step``. Resuming at step ``s`` therefore
needs no iterator state: the loop simply reads ``dataset[s]`` onwards. Each
host keeps its slice with :func:`jaxmed.core.mesh.host_local_batch`.
"""

from __future__ import annotations

from typing import Any, Mapping

import grain
import numpy as np


class ArraySource:
  """A grain source over a dict of equal-length arrays; item ``i`` is ``{k: v[i]}``."""

  def __init__(self, arrays: Mapping[str, Any]):
    self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
    lengths = {k: len(v) for k, v in self.arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f"ArraySource: arrays differ in length: {lengths}")
    self._n = next(iter(lengths.values()))

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {k: v[i] for k, v in self.arrays.items()}


def step_batches(source: Any, *, batch_size: int, seed: int, shuffle: bool = True) -> grain.MapDataset:
  """Infinite dataset of global batches; ``ds[step]`` is step's batch.

  Args:
    source: a random-access sequence, e.g. :class:`ArraySource`.
    batch_size: the global batch size (all hosts together).
    seed: shuffle seed; the order is reshuffled every epoch.
    shuffle: ``False`` keeps the source order (evaluation).
  """
  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  return ds.repeat().batch(batch_size, drop_remainder=True)
