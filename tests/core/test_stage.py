"""Atomic stage outputs, cache keys and named checkpoint errors."""

import logging
import os

import jax
import numpy as np
import pytest

from jaxmed import core, llm

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "hf")


class _Crash(Exception):
  pass


def test_atomic_stage_appears_whole_or_not_at_all(tmp_path):
  out = str(tmp_path / "stage")
  with pytest.raises(_Crash):
    with core.atomic_stage(out) as tmp:
      open(os.path.join(tmp, "a.bin"), "wb").write(b"half")
      raise _Crash()
  assert not os.path.exists(out) and os.listdir(tmp_path) == []
  with core.atomic_stage(out) as tmp:
    open(os.path.join(tmp, "a.bin"), "wb").write(b"whole")
  assert core.stage_done(out) and open(os.path.join(out, "a.bin"), "rb").read() == b"whole"
  assert sorted(os.listdir(tmp_path)) == ["stage"]


def test_leftovers_of_a_killed_stage_are_cleared_with_a_log_line(tmp_path, caplog):
  out = str(tmp_path / "stage")
  os.makedirs(out + ".partial-999999")  # a kill -9 mid-write leaves its temporary sibling
  os.makedirs(out)                      # and an older version's unmarked output
  open(os.path.join(out, "model.safetensors"), "wb").write(b"x")
  with caplog.at_level(logging.WARNING, logger="jaxmed"):
    with core.atomic_stage(out) as tmp:
      open(os.path.join(tmp, "b"), "w").write("new")
  messages = " ".join(r.getMessage() for r in caplog.records)
  assert "partial output" in messages and "no .complete marker" in messages
  assert core.stage_done(out) and sorted(os.listdir(out)) == [".complete", "b"]
  names = sorted(os.listdir(tmp_path))
  assert names[0] == "stage" and names[1].startswith("stage.incomplete-") and len(names) == 2
  assert os.listdir(tmp_path / names[1]) == ["model.safetensors"]  # moved aside, never deleted


def test_atomic_file(tmp_path):
  path = str(tmp_path / "fig.png")
  with pytest.raises(_Crash):
    with core.atomic_file(path) as tmp:
      open(tmp, "w").write("half")
      raise _Crash()
  assert os.listdir(tmp_path) == []
  with core.atomic_file(path) as tmp:
    assert tmp.endswith(".png")
    open(tmp, "w").write("whole")
  assert os.listdir(tmp_path) == ["fig.png"]


def test_hf_export_crash_before_the_marker_leaves_no_stage_and_the_redo_is_exact(tmp_path, monkeypatch):
  import safetensors.numpy

  model, params = llm.load_pretrained(os.path.join(FIXTURES, "qwen2"))
  tok = llm.load_tokenizer(os.path.join(FIXTURES, "qwen2"))
  out = str(tmp_path / "base_model")
  real = safetensors.numpy.save_file

  def half_then_crash(tensors, path, metadata=None):
    real(tensors, path, metadata=metadata)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
    raise _Crash("killed after the weights, before the tokenizer and the marker")

  monkeypatch.setattr(safetensors.numpy, "save_file", half_then_crash)
  with pytest.raises(_Crash):
    llm.save_pretrained(model, params, out, extras=(tok,))
  assert not core.stage_done(out) and not os.path.exists(out)
  monkeypatch.setattr(safetensors.numpy, "save_file", real)
  llm.save_pretrained(model, params, out, extras=(tok,))
  assert core.stage_done(out)
  _, back = llm.load_pretrained(out)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert llm.load_tokenizer(out)("hello world")["input_ids"] == tok("hello world")["input_ids"]


def test_truncated_safetensors_is_a_named_checkpoint_error(tmp_path):
  import shutil
  shutil.copytree(os.path.join(FIXTURES, "qwen2"), tmp_path / "ckpt")
  weights = tmp_path / "ckpt" / "model.safetensors"
  with open(weights, "r+b") as f:
    f.truncate(os.path.getsize(weights) // 2)
  # the header is read alone (streamed loading): the first tensor past the cut is named
  with pytest.raises(core.CheckpointError, match=r"ckpt/model.safetensors: tensor '.+' data_offsets \[\d+, \d+\] "
                                                 r"do not hold shape .+ inside the file"):
    llm.load_pretrained(str(tmp_path / "ckpt"))
  assert llm.CheckpointError is core.CheckpointError


def test_truncated_timesfm_weights_are_a_named_checkpoint_error(tmp_path):
  from jaxmed import eeg
  path = tmp_path / "timesfm.safetensors"
  path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
  with pytest.raises(core.CheckpointError, match=r"timesfm.safetensors: could not read a safetensors file of "
                                                 r"TimesFM weights"):
    eeg.load_timesfm_safetensors(str(path), eeg.TimesFMDecoder(depth=1))


def test_settings_key_changes_with_settings_and_the_input_file(tmp_path):
  f = tmp_path / "slide.tiff"
  f.write_bytes(b"abc")
  k = core.settings_key({"level": 1}, str(f))
  assert core.settings_key({"level": 1}, str(f)) == k
  assert core.settings_key({"level": 2}, str(f)) != k
  f.write_bytes(b"abcd")  # replaced by another file of another size
  assert core.settings_key({"level": 1}, str(f)) != k
