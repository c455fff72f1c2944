"""The MedVLM-R1 experiment's tiny preset runs every stage, honours the workdir contract and resumes."""

import json
import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from experiments.medvlm_r1 import config as mr_config
from experiments.medvlm_r1 import train as mr_train
from jaxmed import vlm
from jaxmed.io.mcqa import MCQAError


def test_medvlm_r1_tiny_end_to_end_and_resume(tmp_path):
  config = mr_config.get_config("tiny")
  results = mr_train.train_and_evaluate(config, str(tmp_path))
  for tag in ("base", "grpo"):
    for key in (f"acc/{tag}/mri", f"acc/{tag}/ct", f"acc/{tag}/xray", f"format_rate/{tag}"):
      assert key in results and 0.0 <= results[key] <= 1.0, key
  assert math.isfinite(results["reward/final"])
  # the held-out MRI images are in-domain test items; CT and X-ray are test only
  assert results["num_items/test/mri"] > 0 and results["num_items/test/ct"] > 0 and results["num_items/test/xray"] > 0
  # stage 0 saved a real HF checkpoint (with tokenizer and image processor) that loads like any other
  model, _ = vlm.load_vlm(str(tmp_path / "base_model"))
  assert model.config.text.mrope_section == tuple(config.model.mrope_section)
  for f in ("tokenizer.json", "preprocessor_config.json"):
    assert os.path.exists(tmp_path / "base_model" / f), f
  rows = [json.loads(line) for line in open(tmp_path / "grpo" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, config.grpo.steps + 1))
  for key in ("reward_mean", "reward/partial_mean", "reward/format_mean", "kl", "clip_fraction", "tokens_per_s_rollout"):
    assert key in rows[0], key
  done = [json.loads(line) for line in open(tmp_path / "completions.jsonl")]
  assert len(done) == sum(results[f"num_items/test/{m}"] for m in ("mri", "ct", "xray"))
  assert {"base_completion", "grpo_completion", "answer", "modality"} <= set(done[0])
  mri = [d for d in done if d["modality"] == "MRI"]
  assert np.isclose(np.mean([d["grpo_correct"] for d in mri]), results["acc/grpo/mri"])
  for f in ("config.json", "metrics.jsonl", "results.json", "rewards.png", "examples.png",
            "grpo/completions.jsonl", "grpo/final/model.safetensors"):
    assert os.path.exists(tmp_path / f), f
  assert {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")} == {"pretrain", "grpo"}
  # a rerun resumes: the base model and the GRPO policy are reused, and evaluation gives the same numbers
  before = os.path.getmtime(tmp_path / "grpo" / "final" / "model.safetensors")
  again = mr_train.train_and_evaluate(config, str(tmp_path))
  assert os.path.getmtime(tmp_path / "grpo" / "final" / "model.safetensors") == before
  for key in ("acc/base/mri", "acc/grpo/mri", "acc/grpo/ct", "format_rate/grpo", "reward/final"):
    assert again[key] == results[key], key


def test_medvlm_r1_crash_between_weights_and_marker_redoes_the_stage(tmp_path, monkeypatch):
  """The GRPO policy's export dies after writing (half) its weights: no stage is left that a rerun would
  trust, and the rerun redoes GRPO and ends with the uninterrupted run's numbers."""
  import safetensors.numpy
  from jaxmed import core

  config = mr_config.get_config("tiny")
  config.grpo.steps = 2
  full = mr_train.train_and_evaluate(config, str(tmp_path / "full"))

  real = safetensors.numpy.save_file

  class Killed(Exception):
    pass

  def crash_on_the_policy(tensors, path, metadata=None):
    real(tensors, path, metadata=metadata)
    if f"{os.sep}grpo{os.sep}" in path:  # the GRPO policy's export dies mid-file
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
      raise Killed()

  crashed = str(tmp_path / "crashed")
  shutil.copytree(tmp_path / "full", crashed)  # stage 0 is done; the GRPO stage is not
  shutil.rmtree(os.path.join(crashed, "grpo"))
  monkeypatch.setattr(safetensors.numpy, "save_file", crash_on_the_policy)
  with pytest.raises(Killed):
    mr_train.train_and_evaluate(config, crashed)
  assert core.stage_done(os.path.join(crashed, "base_model"))
  assert not os.path.exists(os.path.join(crashed, "grpo", "final"))
  monkeypatch.setattr(safetensors.numpy, "save_file", real)
  again = mr_train.train_and_evaluate(config, crashed)
  assert core.stage_done(os.path.join(crashed, "grpo", "final"))
  for key in ("acc/base/mri", "acc/grpo/mri", "acc/grpo/ct", "acc/grpo/xray", "format_rate/grpo", "reward/final"):
    assert again[key] == full[key], key
  assert len(again["wall_time_legs_s"]) == 3  # the copied finished leg, the crashed one, the redo


def test_score_answers_reads_the_evaluation_regex():
  items = [{"answer": "B", "options": {"A": "x", "B": "y"}}] * 3
  texts = ["<think>y</think><answer>B</answer>", "<answer> B </answer>", "<think>y</think><answer>A</answer>"]
  s = mr_train.score_answers(texts, items)
  assert s["correct"].tolist() == [1.0, 1.0, 0.0] and s["format"].tolist() == [1.0, 0.0, 1.0]


def test_modality_keys():
  assert [mr_train.modality_key(m) for m in ("MRI", "CT", "X-Ray", "X-ray", "")] == ["mri", "ct", "xray", "xray",
                                                                                   "unknown"]


def _write_jsonl(path, records):
  path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_jsonl_source_resizes_images_and_groups_test_by_modality(tmp_path):
  for name, shape in (("a.png", (40, 30)), ("b.png", (64, 64))):
    Image.fromarray(np.zeros(shape + (3,), np.uint8)).save(tmp_path / name)
  rec = {"question": "Which modality?", "options": {"A": "MRI", "B": "CT"}, "answer": "A"}
  _write_jsonl(tmp_path / "train.jsonl", [dict(rec, image="a.png", modality="MRI")])
  _write_jsonl(tmp_path / "test.jsonl", [dict(rec, image="a.png", modality="MRI"),
                                         dict(rec, image="b.png", modality="X-Ray", answer="B")])
  config = mr_config.get_config("tiny")
  config.data.update(dict(source="jsonl", train_jsonl=str(tmp_path / "train.jsonl"),
                          test_jsonl=str(tmp_path / "test.jsonl")))
  config.base_model = str(tmp_path)
  data = mr_train.load_data(config)
  assert len(data["images"]) == 2                          # a.png is read once for train and test
  assert {im.size for im in data["images"]} == {(config.data.image_size, config.data.image_size)}
  assert sorted(data["test"]) == ["mri", "xray"] and data["test"]["xray"][0]["answer"] == "B"
  assert data["train"][0]["image"] == data["test"]["mri"][0]["image"]
  _write_jsonl(tmp_path / "bad.jsonl", [dict(rec, image="missing.png")])
  config.data.test_jsonl = str(tmp_path / "bad.jsonl")
  with pytest.raises(MCQAError, match=r"bad.jsonl:1.*image"):
    mr_train.load_data(config)


def test_jsonl_source_needs_a_base_model():
  config = mr_config.get_config("tiny")
  config.data.source = "jsonl"
  with pytest.raises(ValueError, match="base_model"):
    mr_train.load_data(config)
