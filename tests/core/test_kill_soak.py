"""kill -9 soak: a run killed at 5 random moments in a row, then finished, equals an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxmed import core
from tests.core import regression_experiment as reg
from tests.core.test_training_loop import _final_params

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERRIDES = {"train.steps": 240, "train.save_every": 7, "train.log_every": 1}


def _command(workdir):
  return [sys.executable, "-m", "tests.core.regression_experiment", f"--workdir={workdir}",
          *(f"--config.{k}={v}" for k, v in OVERRIDES.items())]


def _env():
  # one CPU device in the children, as the in-process reference uses
  return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_kill_9_at_five_random_moments_then_a_clean_run_is_bitwise_an_uninterrupted_run(tmp_path):
  full, soak = str(tmp_path / "full"), str(tmp_path / "soak")
  t0 = time.time()
  subprocess.run(_command(full), cwd=ROOT, env=_env(), check=True, capture_output=True)
  duration = time.time() - t0

  rng = np.random.default_rng(2026)
  moments = sorted(rng.uniform(0.3, 1.0, size=5) * duration)  # startup, training and checkpoint writes alike
  for moment in moments:
    proc = subprocess.Popen(_command(soak), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(moment)
    if proc.poll() is None:
      os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
  subprocess.run(_command(soak), cwd=ROOT, env=_env(), check=True, capture_output=True)

  config = core.apply_overrides(reg.get_config(), OVERRIDES)
  a, step_a = _final_params(full, config)
  b, step_b = _final_params(soak, config)
  assert step_a == step_b == OVERRIDES["train.steps"]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  rows = core.read_metrics(soak)
  assert [r["step"] for r in rows] == list(range(1, OVERRIDES["train.steps"] + 1))  # every step exactly once
  assert [r["loss"] for r in rows] == [r["loss"] for r in core.read_metrics(full)]
  with open(os.path.join(soak, "results.json")) as f:
    results = json.load(f)
  assert len(results["wall_time_legs_s"]) == 6
  assert results["wall_time_s"] == pytest.approx(sum(results["wall_time_legs_s"]), abs=1e-2)
