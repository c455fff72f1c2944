"""Config overrides: unknown keys and wrong types fail loudly, in Python and on the command line."""

import os
import subprocess
import sys

import pytest

from jaxmed import core
from tests.core import regression_experiment as reg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_apply_overrides_sets_and_coerces():
  c = core.apply_overrides(reg.get_config(), ["train.steps=7", "train.lr=1", "model.dropout=0.0"])
  assert c.train.steps == 7 and c.train.lr == 1.0 and isinstance(c.train.lr, float)
  c = core.apply_overrides(c, {"data.noise": 0.5})
  assert c.data.noise == 0.5
  assert reg.get_config().train.steps == 20  # the input is not mutated


def test_unknown_key_names_the_key_and_the_valid_ones():
  with pytest.raises(core.ConfigError, match=r"unknown config key 'train.stpes'.*valid keys there: \[.*'steps'"):
    core.apply_overrides(reg.get_config(), ["train.stpes=5"])
  with pytest.raises(core.ConfigError, match="no 'optim' under <root>"):
    core.apply_overrides(reg.get_config(), {"optim.lr": 1e-3})


def test_wrong_type_names_key_and_expected_type():
  with pytest.raises(core.ConfigError, match=r"'train.steps' expects int .* got str 'many'"):
    core.apply_overrides(reg.get_config(), ["train.steps=many"])
  with pytest.raises(core.ConfigError, match=r"'train.steps' expects int .* got float"):
    core.apply_overrides(reg.get_config(), {"train.steps": 2.5})


def test_unknown_preset():
  with pytest.raises(core.ConfigError, match="unknown preset 'huge'"):
    reg.get_config("huge")


def _run(*args):
  return subprocess.run([sys.executable, "-m", "tests.core.regression_experiment", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_command_line_overrides(tmp_path):
  ok = _run(f"--workdir={tmp_path / 'ok'}", "--config.train.steps=3", "--config.train.save_every=3")
  assert ok.returncode == 0, ok.stderr[-2000:]
  for name in ("config.json", "metrics.jsonl", "results.json", "checkpoints"):
    assert os.path.exists(tmp_path / "ok" / name)
  unknown = _run(f"--workdir={tmp_path / 'bad'}", "--config.train.stpes=3")
  assert unknown.returncode == 2 and "unknown config key" in unknown.stderr and "train.stpes" in unknown.stderr
  wrong = _run(f"--workdir={tmp_path / 'bad'}", "--config.train.steps=abc")
  assert wrong.returncode != 0 and "train.steps" in wrong.stderr
  assert not os.path.exists(tmp_path / "bad" / "checkpoints")
