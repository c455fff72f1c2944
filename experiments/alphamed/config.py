"""Config for the AlphaMed experiment.

  python -m experiments.alphamed --config=experiments/alphamed/config.py:demo --workdir=runs/alphamed
  python -m experiments.alphamed --config=experiments/alphamed/config.py:demo --workdir=runs/am \\
      --config.base_model=/path/to/Qwen2.5-0.5B-Instruct --config.data.source=jsonl \\
      --config.data.train_jsonl=medqa_train.jsonl --config.data.test_jsonl=medqa_test.jsonl

Presets:
  tiny  - a 12-disease world, a ~0.2M-parameter base model, a few GRPO steps: a CI smoke run.
  demo  - a 30-disease world, a ~1.7M-parameter Qwen2-shaped base model pretrained on the
          world's textbook, a non-medical gazetteer's prose and 2000 non-medical think/answer
          exercises (stage 0, about 17 minutes on 2 CPU cores), then GRPO and the ablations
          (about 15 minutes).
  paper - a real checkpoint and MedQA-style JSONL (set base_model and the data paths);
          AlphaMed's GRPO settings (8 samples per prompt, lr 1e-6, beta 0.04 per the issue).
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # "" trains the synthetic base model (stage 0); a directory loads a local HF checkpoint instead.
  c.base_model = ""
  c.data = ml_collections.ConfigDict(dict(source="synth", num_diseases=30, train_jsonl="", test_jsonl="",
                                          jsonl_format="medqa", paraphrases=3, instruction_items=2000,
                                          gazetteer_countries=30, recall_fraction=0.45,
                                          reading_fraction=0.4, prose_repeats=6))
  c.model = ml_collections.ConfigDict(dict(hidden_size=192, intermediate_size=512, num_layers=4, num_heads=6,
                                           num_kv_heads=2, head_dim=32, vocab_size=768))
  # copy_fraction: share of stage-0 rows that are induction rows (random tokens, one copy_span-token span
  # repeated in each copy_length-token piece, loss on the repeat only); copy_warmup_steps: that many steps
  # of such rows alone, first; copy_source: "tokens" (random BPE tokens) or "words" (random corpus words).
  # Both off in the demo: trials in docs/results.md
  c.pretrain = ml_collections.ConfigDict(dict(steps=2000, batch_size=16, seq_len=256, lr=3e-3, warmup=50,
                                              copy_fraction=0.0, copy_span=24, copy_length=64,
                                              copy_warmup_steps=0, copy_source="tokens"))
  # Stage 1: difficulty from the base model's pass rate over k samples (AlphaMed's protocol):
  # hard = no correct sample, easy = pass rate >= easy_threshold, medium otherwise.
  c.difficulty = ml_collections.ConfigDict(dict(k=8, temperature=1.0, easy_threshold=0.5))
  c.grpo = ml_collections.ConfigDict(dict(steps=40, prompts_per_step=8, group_size=8, max_new_tokens=96,
                                          temperature=1.0, lr=3e-4, beta=0.04, epsilon=0.2, mu=1,
                                          aggregation="grpo", advantage_scale="group",
                                          rewards=("accuracy", "format"), reward_weights=(1.0, 0.5),
                                          log_completions_every=10))
  # Data-centric ablations: each a separate GRPO run with the same steps from the same base model.
  c.ablation = ml_collections.ConfigDict(dict(quantity=(0.25,), difficulty=("easy", "hard"), steps=20))
  # 96 tokens: a worked 2-hop answer (reverse fact, fact, option) is about 90 BPE tokens
  c.eval = ml_collections.ConfigDict(dict(max_new_tokens=96))
  c.train = ml_collections.ConfigDict(dict(log_every=50, save_every=1000, keep=1))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset == "tiny":
    c.data.update(dict(num_diseases=12, instruction_items=120, paraphrases=2, gazetteer_countries=8,
                       prose_repeats=1))
    c.model.update(dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1,
                        head_dim=32, vocab_size=512))
    c.pretrain.update(dict(steps=40, batch_size=8, seq_len=256, warmup=10, copy_fraction=0.25,
                           copy_warmup_steps=4, copy_source="words"))  # exercise the copy-row paths
    c.difficulty.k = 2
    c.grpo.update(dict(steps=3, prompts_per_step=2, group_size=4, max_new_tokens=16, log_completions_every=2))
    c.ablation.update(dict(quantity=(0.5,), difficulty=("hard",), steps=2))
    c.eval.max_new_tokens = 16
    c.train.update(dict(log_every=10, save_every=40))
  elif preset == "paper":
    c.data.source = "jsonl"
    c.grpo.update(dict(steps=1000, prompts_per_step=64, group_size=8, max_new_tokens=1024, lr=1e-6))
    c.ablation.steps = 500
    c.eval.max_new_tokens = 1024
  return c
