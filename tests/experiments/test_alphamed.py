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


def test_every_preset_grades_with_one_of_its_rewards(tmp_path):
  for preset in ("tiny", "demo", "paper"):
    am_train.check_grader(am_config.get_config(preset))
  config = am_config.get_config("demo")
  config.eval.grader = "accuracy"   # graded by letter, trained on option_accuracy: one clear error, no run
  with pytest.raises(ValueError, match="eval.grader='accuracy' is not among config.grpo.rewards"):
    am_train.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_alphamed_tiny_end_to_end(tmp_path):
  config = am_config.get_config("tiny")
  results = am_train.train_and_evaluate(config, str(tmp_path))
  for key in ("acc/base", "acc/grpo", "format_rate/grpo", "acc/grpo/hard", "ablation/quantity_0.5/acc",
              "acc/format_only", "format_rate/format_only", "acc/grpo/hop2", "acc/constant_letter_best"):
    assert key in results and math.isfinite(results[key]), key
  assert 0.0 <= results["acc/grpo"] <= 1.0 and 0.0 <= results["base/copy_accuracy"] <= 1.0
  assert 1 / 5 <= results["acc/constant_letter_best"] <= 1.0   # pigeonhole over at most 5 letters
  assert sum(results[f"num_items/train/{d}"] for d in ("easy", "medium", "hard")) == results["num_items/train"]
  # stage 0 saved a real HF checkpoint that loads like any other
  model, _ = llm.load_pretrained(str(tmp_path / "base_model"))
  assert model.config.family == "qwen2"
  rows = [json.loads(line) for line in open(tmp_path / "grpo" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, config.grpo.steps + 1))
  for key in ("reward_mean", "reward/accuracy_mean", "reward/format_mean", "kl", "clip_fraction", "clip_low",
              "clip_high", "entropy", "frac_reward_zero_std", "completion_len_mean", "tokens_per_s_rollout",
              "tokens_per_s_update"):
    assert key in rows[0], key
  logged = [json.loads(line) for line in open(tmp_path / "grpo" / "completions.jsonl")]
  assert logged and {"prompt", "completion", "answer", "reward"} <= set(logged[0])
  for f in ("config.json", "metrics.jsonl", "results.json", "grpo.png"):
    assert os.path.exists(tmp_path / f), f
  runs = {json.loads(line)["run"] for line in open(tmp_path / "metrics.jsonl")}
  assert {"pretrain", "grpo", "format_only", "mixed_all", "quantity_0.5"} <= runs
  control = [json.loads(line) for line in open(tmp_path / "control_format_only" / "metrics.jsonl")]
  assert "reward/accuracy_mean" not in control[0] and "reward/format_mean" in control[0]


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


LLAMA3_TEMPLATE = (
    "{{ '<|begin_of_text|>' }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
    " + m['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def test_padless_llama3_style_checkpoint_runs_stage_1_with_one_bos(tmp_path):
  """Llama-3.x has no pad token and a template that already starts with <|begin_of_text|>."""
  import jax
  import jax.numpy as jnp
  from tokenizers import processors

  from jaxmed.synth import medcases, medworld

  items = medcases.case_items(medworld.make_world(8, seed=0), 6, seed=0)
  special = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
  tok = llm.train_bpe_tokenizer([it["question"] for it in items], str(tmp_path / "tok"), vocab_size=400,
                                chat_template=LLAMA3_TEMPLATE, extra_special_tokens=special)
  bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
  tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
      single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])   # adds BOS, as Llama-3's does
  tok.pad_token, tok.bos_token, tok.eos_token = None, "<|begin_of_text|>", "<|eot_id|>"
  cfg = llm.LMConfig(family="llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_layers=1,
                     num_heads=2, num_kv_heads=1, head_dim=16, bos_token_id=bos,
                     eos_token_id=tok.convert_tokens_to_ids("<|eot_id|>"))
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  llm.save_pretrained(model, params, str(tmp_path / "ckpt"), extras=(tok,))
  tok2 = llm.load_tokenizer(str(tmp_path / "ckpt"))
  assert tok2.pad_token_id is None
  ids = am_train.prompt_ids(tok2, items[0])
  assert ids.count(bos) == 1 and ids[0] == bos
  assert am_train.pad_id(tok2) == tok2.eos_token_id
  model2, params2 = llm.load_pretrained(str(tmp_path / "ckpt"))
  out = am_train.sample_and_score(model2, params2, tok2, items, k=2, temperature=1.0, max_new_tokens=6,
                                  rng=jax.random.PRNGKey(1), chunk_prompts=4, width_bucket=32)
  assert out["accuracy"].shape == (6, 2) and len(out["texts"]) == 12
