"""The workdir contract's files: ``config.json``, ``metrics.jsonl``, ``results.json``.

``metrics.jsonl`` has one JSON object per logged step, ``{"step": s, ...}``.
On resume the writer drops lines past the restored step, so the file never
holds a duplicated or a missing step. A torn last line (the process died
mid-write, the disk filled up) is dropped with a warning; a damaged line
before the last one is an error that names the file and the line.
TensorBoard events are written too when ``tensorboardX`` is installed; it
is optional.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
from typing import Any, Mapping

import jax
import numpy as np

from jaxmed.core.stage import atomic_file


def _jsonable(v: Any) -> Any:
  if isinstance(v, Mapping):
    return {str(k): _jsonable(x) for k, x in v.items()}
  if isinstance(v, (list, tuple)):
    return [_jsonable(x) for x in v]
  if isinstance(v, (jax.Array, np.ndarray, np.generic)):
    v = np.asarray(v)
    return v.item() if v.ndim == 0 else v.tolist()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)  # JSON has no NaN/inf; keep it visible instead of crashing
  return v


def result_float(v: Any) -> float:
  """A value read back from ``results.json`` as a float: ``"nan"``/``"inf"`` (how NaN/inf are written) and
  missing (``None``) or non-numeric values become NaN."""
  try:
    return float(v)
  except (TypeError, ValueError):
    return float("nan")


def to_host(metrics: Mapping[str, Any]) -> dict[str, float]:
  """Fetches a dict of device scalars as Python floats (one transfer)."""
  return {k: float(v) for k, v in jax.device_get(dict(metrics)).items()}


def write_json(path: str, obj: Any) -> None:
  """Atomic JSON write (:func:`~jaxmed.core.atomic_file`), so a crash never leaves half a file."""
  with atomic_file(path) as tmp, open(tmp, "w") as f:
    json.dump(_jsonable(obj), f, indent=2, sort_keys=True)
    f.write("\n")


def device_kind() -> str:
  d = jax.devices()[0]
  return f"{d.platform}:{d.device_kind}"


def write_results(workdir: str, results: Mapping[str, Any], *, wall_time_s: float | None = None
                  ) -> dict[str, Any]:
  """Writes ``results.json``: the headline metrics plus run facts.

  Added keys: ``wall_time_s``, ``wall_time_legs_s``, ``jax_version``,
  ``device_kind``, ``num_devices``, ``python``, ``finished_at``. In a workdir
  opened with :func:`jaxmed.core.open_workdir` the wall time is the sum over
  every leg (run) of the workdir, killed legs included, and ``wall_time_s``
  must not be given; otherwise it is ``wall_time_s``, one leg.
  """
  from jaxmed.core.workdir import finish_leg  # workdir imports this module

  legs = finish_leg(workdir)
  if legs is None:
    if wall_time_s is None:
      raise ValueError(f"write_results({workdir!r}): pass wall_time_s, or open the workdir with "
                       "core.open_workdir so that its legs are timed")
    legs = [float(wall_time_s)]
  out = dict(_jsonable(dict(results)))
  out.update(wall_time_s=float(sum(legs)), wall_time_legs_s=[round(x, 3) for x in legs],
             jax_version=jax.__version__, device_kind=device_kind(),
             num_devices=jax.device_count(), python=platform.python_version(),
             finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
  write_json(os.path.join(workdir, "results.json"), out)
  return out


def read_metrics(workdir: str, filename: str = "metrics.jsonl") -> list[dict[str, Any]]:
  """The rows of ``<workdir>/<filename>`` (``[]`` if absent); a torn last line is dropped with a warning.

  Raises:
    ValueError: a line other than the last is not a JSON object; names the file and line.
  """
  path = os.path.join(workdir, filename)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split("\n")
  numbered = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
  rows = []
  for j, (i, line) in enumerate(numbered):
    try:
      row = json.loads(line)
      if not isinstance(row, dict) or "step" not in row:
        raise ValueError("not an object with a 'step' field")
    except ValueError as e:
      if j == len(numbered) - 1:
        logging.getLogger("jaxmed").warning("%s:%d: dropping a torn last line (%s): %.60r", path, i, e, line)
        break
      raise ValueError(f"{path}:{i}: damaged metrics row ({e}); expected one JSON object with a 'step' "
                       "field per line. Remove the line to resume.") from None
    rows.append(row)
  return rows


def gather_run_metrics(workdir: str, runs) -> None:
  """Writes ``<workdir>/metrics.jsonl`` from each ``<workdir>/<run>/metrics.jsonl``, tagging rows with ``"run"``.

  For experiments that train several models, each in its own run directory.
  """
  with atomic_file(os.path.join(workdir, "metrics.jsonl")) as tmp, open(tmp, "w") as f:
    for run in runs:
      for row in read_metrics(os.path.join(workdir, run)):
        f.write(json.dumps({"run": run, **row}) + "\n")


class MetricWriter:
  """Appends step metrics to ``metrics.jsonl`` (and TensorBoard if available).

  Args:
    workdir: the experiment's workdir.
    resume_step: the step training restarts from; logged lines with a larger
      step are removed (they were written after the last checkpoint).
    filename: another step-keyed JSONL log under the same rules (e.g.
      ``completions.jsonl``, several rows per step); TensorBoard only for
      ``metrics.jsonl``.
  """

  def __init__(self, workdir: str, resume_step: int = 0, filename: str = "metrics.jsonl"):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, filename)
    kept = [r for r in read_metrics(workdir, filename) if r["step"] <= resume_step]
    with atomic_file(self.path) as tmp, open(tmp, "w") as f:  # a crash while rewriting loses no row
      f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    self._file = open(self.path, "a")
    self._tb = None
    if filename != "metrics.jsonl":
      return
    try:
      import tensorboardX  # optional
      self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"))
    except ImportError:
      pass

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    row = {"step": int(step), **_jsonable(dict(metrics))}
    self._file.write(json.dumps(row, sort_keys=True) + "\n")
    self._file.flush()
    if self._tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, int(step))

  def close(self) -> None:
    self._file.close()
    if self._tb is not None:
      self._tb.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
