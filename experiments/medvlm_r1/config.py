"""Config for the MedVLM-R1 experiment.

  python -m experiments.medvlm_r1 --config=experiments/medvlm_r1/config.py:demo --workdir=runs/medvlm_r1
  python -m experiments.medvlm_r1 --config=experiments/medvlm_r1/config.py:paper --workdir=runs/mr1 \\
      --config.base_model=/path/to/Qwen2-VL-2B-Instruct \\
      --config.data.train_jsonl=mri_train.jsonl --config.data.test_jsonl=omnimedvqa_test.jsonl

Presets:
  tiny  - 32 VQA images, a ~0.2M-parameter Qwen2-VL-shaped base model, a few GRPO steps: a CI smoke run.
  demo  - 600 VQA images (463 MRI training questions, near the paper's 600), a Qwen2-VL-shaped base
          model (2-block vision tower, 4-layer M-RoPE decoder) pretrained on 800 captioned MRI/CT/X-ray
          images, the AlphaMed world's generic text think/answer exercises and 1200 generic shape
          exercises (stage 0), then 300 GRPO steps on MRI questions only and greedy evaluation on MRI
          (in domain), CT and X-ray (out of domain). About 35 minutes on 2 free CPU cores.
  paper - a real checkpoint and MedVLM-R1 / OmniMedVQA JSONL (set base_model and the data paths) with
          the official recipe: G=4, beta=0.04 (k3 KL), lr 1e-6, temperature 1.0, one update per batch.

GRPO's rewards are MedVLM-R1's: ``format`` (``<think>..</think><answer>..</answer>``, 1 or 0) and
``partial`` (1 for exactly the gold letter, 0.5 for the gold letter with extra text), summed.
Evaluation is greedy and reads the answer with ``<answer>\\s*([A-Z])\\s*</answer>``.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # "" trains the synthetic base VLM (stage 0); a directory loads a local Qwen2-VL checkpoint instead
  # (config.json, model.safetensors, tokenizer and preprocessor_config.json).
  c.base_model = ""
  # source "synth": jaxmed.synth.vqa; "jsonl": train_jsonl / test_jsonl in the MedVLM-R1 / OmniMedVQA layout
  # (jaxmed.io.load_vqa_jsonl), every image resized to image_size x image_size so batches share a patch grid.
  c.data = ml_collections.ConfigDict(dict(source="synth", vqa_images=600, caption_images=800, image_size=56,
                                          train_modalities=("MRI",), test_fraction=0.3, instruction_items=1500,
                                          reading_fraction=0.4, visual_exercises=1200, train_jsonl="",
                                          test_jsonl=""))
  c.model = ml_collections.ConfigDict(dict(hidden_size=128, intermediate_size=384, num_layers=4, num_heads=4,
                                           num_kv_heads=2, head_dim=32, mrope_section=(4, 6, 6), vocab_size=768,
                                           vision_depth=2, vision_dim=64, vision_heads=4))
  # each stage-0 step: caption_batch captioned images, text_batch packed rows of text exercises and
  # visual_batch generic visual exercises (jaxmed.synth.shapes_vqa; data.visual_exercises=0 drops them)
  c.pretrain = ml_collections.ConfigDict(dict(steps=1500, caption_batch=16, text_batch=8, visual_batch=8,
                                              caption_seq_len=64, text_seq_len=256, visual_seq_len=160, lr=3e-3,
                                              warmup=50))
  # MedVLM-R1's recipe is G=4, beta=0.04, lr 1e-6 for a 2B model; a few-million-parameter model from
  # scratch needs a larger step (lr) to move within a CPU budget.
  c.grpo = ml_collections.ConfigDict(dict(steps=300, prompts_per_step=8, group_size=4, max_new_tokens=64,
                                          temperature=1.0, lr=1e-4, beta=0.04, epsilon=0.2, mu=1,
                                          aggregation="grpo", advantage_scale="group",
                                          rewards=("partial", "format"), reward_weights=(1.0, 1.0),
                                          lr_schedule="constant", max_grad_norm=1.0, save_every=50,
                                          log_completions_every=10))
  c.eval = ml_collections.ConfigDict(dict(max_new_tokens=64, batch_size=32, examples=6))
  c.train = ml_collections.ConfigDict(dict(log_every=50, save_every=500, keep=1))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset == "tiny":
    c.data.update(dict(vqa_images=32, caption_images=48, instruction_items=60, visual_exercises=24))
    c.model.update(dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1,
                        head_dim=32, vocab_size=512, vision_depth=1, vision_dim=32, vision_heads=2))
    c.pretrain.update(dict(steps=20, caption_batch=8, text_batch=8, warmup=5))  # 8: the tests run on 8 devices
    c.grpo.update(dict(steps=3, prompts_per_step=2, group_size=4, max_new_tokens=12, log_completions_every=2,
                       save_every=2))
    c.eval.update(dict(max_new_tokens=12, batch_size=16, examples=3))
    c.train.update(dict(log_every=10, save_every=20))
  elif preset == "paper":
    c.data.source = "jsonl"
    c.data.image_size = 448
    c.grpo.update(dict(steps=600, prompts_per_step=8, group_size=4, max_new_tokens=1024, lr=1e-6))
    c.eval.max_new_tokens = 1024
  return c
