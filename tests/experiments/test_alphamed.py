"""The AlphaMed experiment's tiny preset runs every stage and honours the workdir contract."""

import json
import math
import os

import numpy as np
import pytest

from experiments.alphamed import config as am_config
from experiments.alphamed import train as am_train
from jaxmed import llm


def test_difficulty_buckets():
  buckets = am_train.difficulty_buckets(np.asarray([0.0, 0.125, 0.5, 1.0]), 0.5)
  assert list(buckets) == ["hard", "medium", "easy", "easy"]


def test_alphamed_tiny_end_to_end(tmp_path):
  config = am_config.get_config("tiny")
  results = am_train.train_and_evaluate(config, str(tmp_path))
  for key in ("acc/base", "acc/grpo", "format_rate/grpo", "acc/grpo/hard", "ablation/quantity_0.5/acc"):
    assert key in results and math.isfinite(results[key]), key
  assert 0.0 <= results["acc/grpo"] <= 1.0 and 0.0 <= results["base/copy_accuracy"] <= 1.0
  assert sum(results[f"num_items/train/{d}"] for d in ("easy", "medium", "hard")) == results["num_items/train"]
  # stage 0 saved a real HF checkpoint that loads like any other
  model, _ = llm.load_pretrained(str(tmp_path / "base_model"))
  assert model.config.family == "qwen2"
  rows = [json.loads(line) for line in open(tmp_path / "grpo" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, config.grpo.steps + 1))
  for key in ("reward_mean", "reward/accuracy_mean", "reward/format_mean", "kl", "clip_fraction",
              "completion_len_mean", "tokens_per_s_rollout", "tokens_per_s_update"):
    assert key in rows[0], key
  logged = [json.loads(line) for line in open(tmp_path / "grpo" / "completions.jsonl")]
  assert logged and {"prompt", "completion", "answer", "reward"} <= set(logged[0])
  for f in ("config.json", "metrics.jsonl", "results.json", "grpo.png"):
    assert os.path.exists(tmp_path / f), f
  runs = {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")}
  assert {"pretrain", "grpo", "mixed_all", "quantity_0.5", "difficulty_hard"} <= runs


def test_pretraining_refuses_to_cut_an_exercise_from_its_question(tmp_path):
  config = am_config.get_config("tiny")
  config.pretrain.seq_len = 64
  data = am_train.load_items(config)
  with pytest.raises(ValueError, match=r"pretrain.seq_len=64 is shorter than the longest"):
    am_train.train_base_model(config, str(tmp_path), data, mesh=None)


def test_packed_copy_rows_mark_only_the_copyable_repeat():
  from experiments.alphamed.induction_probe import packed_copy_rows

  span, length = 6, 32
  rows = packed_copy_rows(np.random.default_rng(0), 5, seq_len=128, length=length, span=span, vocab=50, offset=7)
  assert rows["tokens"].shape == (5, 128) and rows["mask"].all() and rows["tokens"].min() >= 7
  for r in range(5):
    for j in range(4):
      seg = slice(j * length, (j + 1) * length)
      assert (rows["segment_ids"][r, seg] == j + 1).all()
      tok, target = rows["tokens"][r, seg], np.flatnonzero(rows["loss_mask"][r, seg])
      assert len(target) == span - 1   # the repeat after its first token
      b = target[0] - 1
      # each marked token continues the earlier occurrence of the span, so it is predictable in context
      a = next(a for a in range(b - span) if (tok[a:a + span] == tok[b:b + span]).all())
      np.testing.assert_array_equal(tok[target], tok[a + 1:a + span])
