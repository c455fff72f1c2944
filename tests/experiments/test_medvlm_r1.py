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
from jaxmed.vlm.graft import default_mrope_section


LLAMA = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf", "llama")


def tiny_config():
  """The tiny preset on the tiny Llama fixture (a bias-less decoder with a ChatML tokenizer) instead of
  SmolLM2-135M: the same grafting path in seconds."""
  config = mr_config.get_config("tiny")
  config.language_model = LLAMA
  return config


def test_medvlm_r1_tiny_end_to_end_and_resume(tmp_path):
  config = tiny_config()
  results = mr_train.train_and_evaluate(config, str(tmp_path))
  for tag in ("base", "grpo", "format_only"):
    for key in (f"acc/{tag}/mri", f"acc/{tag}/ct", f"acc/{tag}/xray", f"format_rate/{tag}"):
      assert key in results and 0.0 <= results[key] <= 1.0, key
  for key in ("acc/chance/mri", "acc/constant_letter_best/mri", "acc_diff/grpo_minus_base/mri",
              "acc_diff/grpo_minus_format_only/mri"):
    assert key in results, key
  assert math.isfinite(results["reward/final"])
  # the held-out MRI images are in-domain test items; CT and X-ray are test only
  assert results["num_items/test/mri"] > 0 and results["num_items/test/ct"] > 0 and results["num_items/test/xray"] > 0
  # stage 0 saved a real HF checkpoint (with tokenizer and image processor) that loads like any other: the
  # Llama decoder in Qwen2-VL's layout, M-RoPE sections in Qwen2-VL's proportions of its head_dim
  model, _ = vlm.load_vlm(str(tmp_path / "base_model"))
  assert model.config.text.mrope_section == default_mrope_section(16)
  for f in ("tokenizer.json", "preprocessor_config.json"):
    assert os.path.exists(tmp_path / "base_model" / f), f
  steps = mr_train.grpo_steps(config, results["num_items/train"])
  assert steps == results["grpo/steps"] == 4   # 4 questions x 2 epochs / 2 per step
  for run in ("control_format_only", "grpo"):
    rows = [json.loads(line) for line in open(tmp_path / run / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
  for key in ("reward_mean", "reward/medvlm_r1_accuracy_mean", "reward/medvlm_r1_format_mean", "kl",
              "clip_fraction", "tokens_per_s_rollout"):
    assert key in rows[0], key
  done = [json.loads(line) for line in open(tmp_path / "completions.jsonl")]
  assert len(done) == sum(results[f"num_items/test/{m}"] for m in ("mri", "ct", "xray"))
  assert {"base_completion", "grpo_completion", "format_only_completion", "answer", "modality"} <= set(done[0])
  mri = [d for d in done if d["modality"] == "MRI"]
  assert np.isclose(np.mean([d["grpo_correct"] for d in mri]), results["acc/grpo/mri"])
  for f in ("config.json", "metrics.jsonl", "results.json", "rewards.png", "examples.png",
            "grpo/completions.jsonl", "grpo/final/model.safetensors", "control_format_only/final/model.safetensors"):
    assert os.path.exists(tmp_path / f), f
  assert {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")} == {
      "align", "tune", "grpo", "control_format_only"}
  # a rerun resumes: the base model and the GRPO policy are reused, and evaluation gives the same numbers
  before = os.path.getmtime(tmp_path / "grpo" / "final" / "model.safetensors")
  again = mr_train.train_and_evaluate(config, str(tmp_path))
  assert os.path.getmtime(tmp_path / "grpo" / "final" / "model.safetensors") == before
  for key in ("acc/base/mri", "acc/grpo/mri", "acc/grpo/ct", "format_rate/grpo", "reward/final"):
    assert again[key] == results[key], key


def test_medvlm_r1_resumes_in_the_middle_of_grpo(tmp_path, monkeypatch):
  """GRPO dies at step 3 (after the step-2 checkpoint): the rerun continues from step 2, logs each step once,
  and ends with the uninterrupted run's policy and numbers."""
  config = tiny_config()
  config.control.rewards = ()   # no control run (covered above)
  full = mr_train.train_and_evaluate(config, str(tmp_path / "full"))
  crashed = str(tmp_path / "crashed")
  shutil.copytree(tmp_path / "full" / "base_model", os.path.join(crashed, "base_model"))
  real, calls = vlm.vlm_rollout, []

  class Killed(Exception):
    pass

  def dies_at_step_3(*args, **kwargs):
    if kwargs["group_size"] > 1:   # a GRPO rollout (evaluation decodes one greedy sample)
      calls.append(1)
      if len(calls) == 3:
        raise Killed()
    return real(*args, **kwargs)

  monkeypatch.setattr(vlm, "vlm_rollout", dies_at_step_3)
  with pytest.raises(Killed):
    mr_train.train_and_evaluate(config, crashed)
  assert [json.loads(line)["step"] for line in open(os.path.join(crashed, "grpo", "metrics.jsonl"))] == [1, 2]
  monkeypatch.setattr(vlm, "vlm_rollout", real)
  again = mr_train.train_and_evaluate(config, crashed)
  rows = [json.loads(line) for line in open(os.path.join(crashed, "grpo", "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  for key in ("acc/grpo/mri", "acc/grpo/ct", "acc/grpo/xray", "format_rate/grpo", "reward/final"):
    assert again[key] == full[key], key
  assert "acc/format_only/mri" not in again


def test_medvlm_r1_on_a_qwen2_vl_checkpoint_skips_stage_0(tmp_path):
  """``--config.base_model`` with a Qwen2-VL directory (the tiny HF fixture) is the base: no stage 0 runs."""
  config = tiny_config()
  config.base_model = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf", "qwen2_vl")
  config.control.rewards = ()
  results = mr_train.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "base_model") and not os.path.exists(tmp_path / "align")
  assert 0.0 <= results["acc/grpo/mri"] <= 1.0 and results["grpo/steps"] == 4
  assert {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")} == {"grpo"}


def test_epoch_order_draws_each_question_once_per_epoch():
  n, per = 10, 4
  steps = [mr_train.epoch_order(n, s, per, seed=0) for s in range(5)]   # 20 draws: two epochs
  flat = sum(steps, [])
  assert sorted(flat[:n]) == list(range(n)) and sorted(flat[n:]) == list(range(n))
  assert flat[:n] != flat[n:]                                            # each epoch its own order
  assert mr_train.epoch_order(n, 3, per, seed=0) == steps[3]              # a resumed run draws the same
  paper = mr_config.get_config("paper")
  assert mr_train.grpo_steps(paper, 600) == 150                           # 600 questions x 2 epochs / 8


def test_medvlm_r1_crash_between_weights_and_marker_redoes_the_stage(tmp_path, monkeypatch):
  """The GRPO policy's export dies after writing (half) its weights: no stage is left that a rerun would
  trust, and the rerun redoes GRPO and ends with the uninterrupted run's numbers."""
  import safetensors.numpy
  from jaxmed import core

  config = tiny_config()
  config.data.train_questions = 2   # 2 GRPO steps
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
  items = [{"answer": "B", "options": {"A": "x", "B": "y"}}] * 4
  texts = ["<think>y</think><answer>B</answer>", "<answer> B </answer>", "<think>y</think><answer>A</answer>",
           "<think>y</think>\n<answer>B. y</answer>"]
  s = mr_train.score_answers(texts, items)
  # evaluation reads a lone capital letter; the format is the official one (think then answer)
  assert s["correct"].tolist() == [1.0, 1.0, 0.0, 0.0] and s["format"].tolist() == [1.0, 0.0, 1.0, 1.0]


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
