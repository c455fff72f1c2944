"""The workdir contract under reruns: config drift, torn metrics lines, wall time over legs."""

import json
import logging
import os
import shutil
import time

import numpy as np
import pytest

from jaxmed import core
from tests.core import regression_experiment as reg


def _results(workdir):
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


def test_config_drift_is_refused_with_the_keys_and_accepted_with_the_override(tmp_path):
  config = reg.get_config()
  workdir = str(tmp_path / "run")
  first = reg.train_and_evaluate(config, workdir)

  changed = core.apply_overrides(config, {"train.lr": 0.5, "model.hidden": 16})
  with pytest.raises(core.ConfigError) as err:
    reg.train_and_evaluate(changed, workdir)
  msg = str(err.value)
  assert "train.lr: 0.01 -> 0.5" in msg and "model.hidden: 32 -> 16" in msg
  assert "--resume_override" in msg and "new --workdir" in msg
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["lr"] == 0.01  # the refused rerun wrote nothing
  assert not os.path.exists(os.path.join(workdir, "config_history.jsonl"))

  # result-neutral keys (logging and checkpoint periods) may differ without an override
  neutral = core.apply_overrides(config, {"train.log_every": 5, "train.keep": 2})
  assert reg.train_and_evaluate(neutral, workdir)["mse"] == first["mse"]

  lr_only = core.apply_overrides(config, {"train.lr": 0.5})
  lr_only.resume_override = True
  reg.train_and_evaluate(lr_only, workdir)
  with open(os.path.join(workdir, "config_history.jsonl")) as f:
    history = [json.loads(line) for line in f]
  assert history[-1]["changes"] == {"train.lr": {"old": 0.01, "new": 0.5}}
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["train"]["lr"] == 0.5 and "resume_override" not in saved
  reg.train_and_evaluate(core.apply_overrides(config, {"train.lr": 0.5}), workdir)  # now the identity


def test_command_line_drift_is_one_error_line_and_override_flag_accepts(tmp_path):
  import subprocess
  import sys
  workdir = str(tmp_path / "cli")
  base = [sys.executable, "-m", "tests.core.regression_experiment", f"--workdir={workdir}",
          "--config.train.steps=5"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert subprocess.run(base, cwd=cwd, env=env, capture_output=True).returncode == 0
  out = subprocess.run(base + ["--config.train.lr=0.5"], cwd=cwd, env=env, capture_output=True, text=True)
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert "train.lr: 0.01 -> 0.5" in out.stderr
  out = subprocess.run(base + ["--config.train.lr=0.5", "--resume_override"], cwd=cwd, env=env,
                       capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert os.path.exists(os.path.join(workdir, "config_history.jsonl"))


def test_wall_time_sums_every_leg_including_a_killed_one(tmp_path):
  config = reg.get_config()
  workdir = str(tmp_path / "legs")
  reg.train_and_evaluate(config, workdir)
  # a second leg that is killed: open the workdir and never finish; its files stop at "now + 0"
  core.open_workdir(workdir, config)
  time.sleep(0.2)
  with open(os.path.join(workdir, "late.txt"), "w") as f:  # the killed leg's last write
    f.write("x")
  out = reg.train_and_evaluate(config, workdir)  # third leg: resumes, everything done already
  legs = out["wall_time_legs_s"]
  assert len(legs) == 3
  assert legs[1] >= 0.2  # the killed leg ran until its newest file
  assert out["wall_time_s"] == pytest.approx(sum(legs), abs=1e-2)
  assert _results(workdir)["wall_time_legs_s"] == legs


def test_write_results_without_open_workdir_needs_the_time(tmp_path):
  with pytest.raises(ValueError, match="wall_time_s"):
    core.write_results(str(tmp_path), {"a": 1.0})
  out = core.write_results(str(tmp_path), {"a": 1.0}, wall_time_s=2.5)
  assert out["wall_time_s"] == 2.5 and out["wall_time_legs_s"] == [2.5]


def test_torn_last_metrics_line_is_dropped_and_the_run_resumes(tmp_path, caplog):
  config = reg.get_config()
  full = str(tmp_path / "full")
  reg.train_and_evaluate(config, full)
  torn = str(tmp_path / "torn")
  # the state of a run killed after step 12 (last checkpoint 10) mid-way through writing the row of step 13
  shutil.copytree(full, torn)
  for step in ("15", "20"):
    shutil.rmtree(os.path.join(torn, "checkpoints", step))
  os.remove(os.path.join(torn, "results.json"))
  rows = core.read_metrics(torn)[:12]
  with open(os.path.join(torn, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
    f.write('{"grad_norm": 0.5, "loss": 0.1')
  with caplog.at_level(logging.WARNING, logger="jaxmed"):
    reg.train_and_evaluate(config, torn)
  assert any("torn last line" in r.getMessage() for r in caplog.records)
  steps = [r["step"] for r in core.read_metrics(torn)]
  assert steps == list(range(1, 21))
  assert [r["loss"] for r in core.read_metrics(torn)] == [r["loss"] for r in core.read_metrics(full)]


def test_a_damaged_middle_metrics_line_names_the_file_and_line(tmp_path):
  with open(tmp_path / "metrics.jsonl", "w") as f:
    f.write('{"step": 1, "loss": 1}\n{"step": 2, "lo\n{"step": 3, "loss": 1}\n')
  with pytest.raises(ValueError, match=r"metrics.jsonl:2: damaged metrics row"):
    core.read_metrics(str(tmp_path))


def test_result_settings_leave_out_neutral_keys():
  config = reg.get_config()
  a = core.result_settings(config)
  b = core.result_settings(core.apply_overrides(config, {"train.log_every": 7, "train.save_every": 2}))
  c = core.result_settings(core.apply_overrides(config, {"train.lr": 0.1}))
  assert a == b and a != c
  assert core.settings_key(a) == core.settings_key(b) != core.settings_key(c)


def test_restoring_an_incompatible_checkpoint_is_a_checkpoint_error(tmp_path):
  config = reg.get_config()
  workdir = str(tmp_path / "run")
  reg.train_and_evaluate(config, workdir)
  other = core.apply_overrides(config, {"model.hidden": 8})
  other.resume_override = True
  with pytest.raises(core.CheckpointError, match=r"checkpoints/20: could not restore"):
    reg.train_and_evaluate(other, workdir)
  assert np.isfinite(_results(workdir)["mse"])
