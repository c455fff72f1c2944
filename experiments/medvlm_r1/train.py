"""MedVLM-R1 experiment: base VLM, GRPO on MRI VQA (no SFT), greedy evaluation in and out of domain.

Stage 0 renders a captioning corpus of MRI, CT and X-ray images
(``jaxmed.synth.vqa``, cases disjoint from the VQA images), trains a
byte-level BPE tokenizer with Qwen2-VL's vision tokens, and trains a small
Qwen2-VL-shaped model on image -> caption rows plus the AlphaMed world's
generic text think/answer exercises (:func:`jaxmed.synth.medworld.instruction_corpus`;
no medical VQA). It is saved as a Hugging Face checkpoint in
``<workdir>/base_model`` with its tokenizer and image processor. With
``--config.base_model=<dir>`` that stage is skipped and a local Qwen2-VL
checkpoint is used the same way.

Stage 1 runs GRPO (``jaxmed.rl`` with the image-conditioned policy of
``jaxmed.vlm.rollout``) on the MRI training questions with MedVLM-R1's format
and partial-accuracy rewards. Stage 2 decodes greedily on the held-out MRI
images (in domain) and on CT and X-ray (out of domain) with the base and the
GRPO policy, reading the answer with MedVLM-R1's regex.

Writes ``rewards.png`` (reward curves), ``examples.png`` (test images with
the generated ``<think>`` and ``<answer>``), ``completions.jsonl`` (greedy
test completions of both policies), ``grpo/metrics.jsonl``,
``grpo/completions.jsonl`` (training samples) and ``grpo/final`` (the policy;
a rerun skips a finished GRPO run).
"""

from __future__ import annotations

import json
import os
import re
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from jaxmed import core, llm, rl, vlm
from jaxmed.io import load_vqa_jsonl, r1_prompt
from jaxmed.llm.pretrain import causal_lm_loss, pack_documents
from jaxmed.synth import medworld, vqa
from jaxmed.synth.shapes_vqa import shape_exercises
from jaxmed.vlm.pretrain import caption_loss, caption_rows
from jaxmed.vlm.processor import (VISION_TOKENS, VL_CHAT_TEMPLATE, chat_ids, image_message, load_image_processor,
                                  make_image_processor)


# ---- data ----

def modality_key(modality: str) -> str:
  """``"X-Ray"`` -> ``"xray"``: the modality as it appears in result keys."""
  return re.sub(r"[^a-z0-9]", "", modality.lower()) or "unknown"


def load_data(config) -> dict:
  """``images`` (PIL, one size), ``train`` items and ``test`` ``{modality key: items}``; items index ``images``."""
  d = config.data
  if d.source == "synth":
    ds = vqa.make_dataset(d.vqa_images, size=d.image_size, seed=config.seed)
    train, test = vqa.split_by_modality(ds["items"], tuple(d.train_modalities), test_fraction=d.test_fraction,
                                        seed=config.seed)
    return {"images": [Image.fromarray(a) for a in ds["images"]], "train": train,
            "test": {modality_key(m): items for m, items in test.items()}}
  if d.source == "jsonl":
    if not d.train_jsonl or not d.test_jsonl or not config.base_model:
      raise ValueError("config.data.source='jsonl' needs data.train_jsonl, data.test_jsonl and base_model")
    images, index = [], {}

    def attach(rec):
      if rec["image"] not in index:
        index[rec["image"]] = len(images)
        images.append(Image.open(rec["image"]).convert("RGB").resize((d.image_size, d.image_size)))
      return dict(rec, image=index[rec["image"]])

    train = [attach(r) for r in load_vqa_jsonl(d.train_jsonl)]
    test: dict[str, list] = {}
    for r in load_vqa_jsonl(d.test_jsonl):
      test.setdefault(modality_key(r["modality"]), []).append(attach(r))
    return {"images": images, "train": train, "test": test}
  raise ValueError(f"config.data.source must be 'synth' or 'jsonl', got {d.source!r}")


def encode_items(tok, improc, images, items) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
  """Prompt ids per item (image placeholders expanded), and the images' ``pixel_values`` ``[I, n, D]`` and
  ``grids`` ``[I, 1, 3]`` (every image has the same patch grid)."""
  vision = improc(images=list(images), return_tensors="np")
  grid = np.asarray(vision["image_grid_thw"])
  if len({tuple(g) for g in grid.tolist()}) != 1:
    raise ValueError(f"the images give different patch grids {sorted({tuple(g) for g in grid.tolist()})}; "
                     "resize them to one size (config.data.image_size)")
  pixels = np.asarray(vision["pixel_values"], np.float32).reshape(len(images), int(np.prod(grid[0])), -1)
  prompts = [chat_ids(tok, [image_message(r1_prompt(it))], grid[it["image"]][None], improc.merge_size)
             for it in items]
  return prompts, pixels, grid[:, None]


# ---- stage 0: the base VLM ----

def train_base_model(config, workdir, data, mesh) -> str:
  out = os.path.join(workdir, "base_model")
  if core.stage_done(out):   # written atomically with its tokenizer and image processor
    return out
  d, m, p = config.data, config.model, config.pretrain
  corpus = vqa.make_dataset(d.caption_images, size=d.image_size, seed=config.seed + 1)   # other cases than VQA's
  exercises = medworld.instruction_corpus(d.instruction_items, seed=config.seed, reading_fraction=d.reading_fraction)
  questions = [r1_prompt(it) for it in data["train"]]    # the tokenizer sees the question text, no answer
  # generic visual think/answer exercises (shapes; nothing medical); data.visual_exercises=0 drops them
  shapes = shape_exercises(d.visual_exercises, size=d.image_size, seed=config.seed + 2) if d.visual_exercises else None
  # the tokenizer's shape text is a separate small draw (the measured demo's tokenizer was trained on it)
  shape_text = [r1_prompt(it) + it["response"] for it in shape_exercises(64, seed=config.seed + 3)["items"]]
  tok = llm.train_bpe_tokenizer(corpus["captions"] + [r1_prompt(e) + e["response"] for e in exercises] + questions
                                + shape_text,
                                os.path.join(workdir, "tokenizer"), vocab_size=m.vocab_size,
                                chat_template=VL_CHAT_TEMPLATE, extra_special_tokens=VISION_TOKENS)
  ids = {t: tok.convert_tokens_to_ids(t) for t in VISION_TOKENS}
  text = llm.LMConfig(family="qwen2", vocab_size=len(tok), hidden_size=m.hidden_size,
                      intermediate_size=m.intermediate_size, num_layers=m.num_layers, num_heads=m.num_heads,
                      num_kv_heads=m.num_kv_heads, head_dim=m.head_dim, qkv_bias=True, tie_embeddings=True,
                      max_position_embeddings=1024, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      mrope_section=tuple(m.mrope_section))
  vcfg = vlm.VLMConfig(text, vlm.VisionConfig(depth=m.vision_depth, embed_dim=m.vision_dim, out_dim=m.hidden_size,
                                              num_heads=m.vision_heads),
                       image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                       vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
  model = vlm.Qwen2VL(vcfg)
  improc = make_image_processor()
  captions = caption_rows(vcfg, tok, improc, [Image.fromarray(a) for a in corpus["images"]], corpus["captions"],
                          seq_len=p.caption_seq_len)
  if shapes:
    visual = caption_rows(vcfg, tok, improc, [Image.fromarray(a) for a in shapes["images"]],
                          [it["response"] for it in shapes["items"]], seq_len=p.visual_seq_len,
                          instruction=[r1_prompt(it) for it in shapes["items"]])
  docs = [chat_ids(tok, [{"role": "user", "content": r1_prompt(e)}, {"role": "assistant", "content": e["response"]}],
                   np.zeros((0, 3), np.int64), improc.merge_size, add_generation_prompt=False) for e in exercises]
  if max(map(len, docs)) > p.text_seq_len:
    raise ValueError(f"pretrain.text_seq_len={p.text_seq_len} is shorter than the longest exercise "
                     f"({max(map(len, docs))} tokens); raise it")
  text_rows = pack_documents(docs, p.text_seq_len, pad_id=tok.pad_token_id)

  def loss_fn(params, batch, rng):
    del rng
    cap, aux = caption_loss(model, params, batch["caption"])
    txt, aux_t = causal_lm_loss(model, params, batch["text"])
    out = {"caption_loss": cap, "text_loss": txt, "caption_token_accuracy": aux["token_accuracy"],
           "text_token_accuracy": aux_t["token_accuracy"]}
    if "visual" not in batch:
      return cap + txt, out
    vis, aux_v = caption_loss(model, params, batch["visual"])
    return cap + txt + vis, {**out, "visual_loss": vis, "visual_token_accuracy": aux_v["token_accuracy"]}

  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, p.lr, p.warmup, p.steps), weight_decay=0.01)
  first = {k: jnp.asarray(v[:1]) for k, v in captions.items()}
  init = lambda r: model.init(r, first["tokens"], first["positions"].transpose(1, 0, 2),  # noqa: E731
                              pixel_values=first["pixel_values"], patch_pos=first["patch_pos"])["params"]
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(config.seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  cap_ds = core.step_batches(core.ArraySource(captions), batch_size=p.caption_batch, seed=config.seed)
  txt_ds = core.step_batches(core.ArraySource(text_rows), batch_size=p.text_batch, seed=config.seed + 1)
  sources = {"caption": cap_ds, "text": txt_ds}
  if shapes:
    sources["visual"] = core.step_batches(core.ArraySource(visual), batch_size=p.visual_batch, seed=config.seed + 2)
  state = core.train_loop(state, step, lambda s: {k: ds[s] for k, ds in sources.items()}, mesh=mesh,
                          run_dir=os.path.join(workdir, "pretrain"), steps=p.steps, save_every=config.train.save_every,
                          keep=config.train.keep, log_every=config.train.log_every, desc="stage 0: base VLM")
  vlm.save_vlm(model, jax.device_get(state.params), out, extras=(tok, improc))
  return out


# ---- stage 1: GRPO ----

def grpo_run(run_dir, model, base_params, tok, enc, items, config, mesh) -> tuple[dict, list[dict]]:
  """GRPO on ``items`` (``enc``: their prompts and the images' pixels, from :func:`encode_items`) from
  ``base_params`` through the shared, resumable :func:`jaxmed.rl.grpo_train`; returns the final params and
  the per-step metrics. ``prompts_per_step`` questions are drawn per step from the step index (with
  replacement when there are fewer), so every step has one compiled shape and a resumed run draws the same."""
  final = os.path.join(run_dir, "final")
  if core.stage_done(final):
    return vlm.load_vlm(final, mesh=mesh)[1], core.read_metrics(run_dir)
  g = config.grpo
  prompts, pixels, grids, width = enc

  def examples_at(step):
    pick = np.random.default_rng([config.seed, step]).choice(len(items), g.prompts_per_step,
                                                             replace=len(items) < g.prompts_per_step)
    return [dict(items[i], prompt_index=int(i)) for i in pick]

  def sample_fn(params, examples, rng):
    batch = vlm.vlm_rollout(model, params, [prompts[ex["prompt_index"]] for ex in examples],
                            [pixels[ex["image"]] for ex in examples], [grids[ex["image"]] for ex in examples], rng,
                            group_size=g.group_size, max_new_tokens=g.max_new_tokens, temperature=g.temperature,
                            eos_ids=model.config.text.eos_ids, pad_id=tok.pad_token_id, pad_to=width)
    return batch, decode(tok, batch)

  logp_fn = vlm.vlm_logp_fn(model, g.temperature)
  state, rows = rl.grpo_train(
      run_dir, params=base_params, mesh=mesh, seed=config.seed, logp_fn=logp_fn, sample_fn=sample_fn,
      examples_at=examples_at, tx=rl.grpo_optimizer(g.lr, g.steps, schedule=g.lr_schedule,
                                                    max_grad_norm=g.max_grad_norm),
      reward_weights=dict(zip(g.rewards, g.reward_weights)), steps=g.steps, group_size=g.group_size, mu=g.mu,
      epsilon=g.epsilon, beta=g.beta, aggregation=g.aggregation, advantage_scale=g.advantage_scale,
      ref_params=base_params, save_every=g.save_every, log_completions_every=g.log_completions_every)
  params = jax.device_get(state.params)
  vlm.save_vlm(model, params, final)
  return params, rows


def decode(tok, batch) -> list[str]:
  comp, mask = np.asarray(batch["completion"]), np.asarray(batch["mask"]).astype(bool)
  return [tok.decode(c[m], skip_special_tokens=True) for c, m in zip(comp, mask)]


# ---- stage 2: greedy evaluation ----

def greedy_answers(model, params, tok, enc, items, config) -> list[str]:
  """Greedy completions for ``items``, in fixed-size chunks (the last one padded) so decoding compiles once."""
  prompts, pixels, grids, width = enc
  size, out = config.eval.batch_size, []
  for start in range(0, len(items), size):
    idx = list(range(start, min(start + size, len(items))))
    idx += [idx[-1]] * (size - len(idx))
    batch = vlm.vlm_rollout(model, params, [prompts[i] for i in idx], [pixels[items[i]["image"]] for i in idx],
                            [grids[items[i]["image"]] for i in idx], jax.random.PRNGKey(0), group_size=1,
                            max_new_tokens=config.eval.max_new_tokens, greedy=True,
                            eos_ids=model.config.text.eos_ids, pad_id=tok.pad_token_id, pad_to=width)
    out += decode(tok, batch)[:min(size, len(items) - start)]
  return out


def score_answers(texts, items) -> dict[str, np.ndarray]:
  """Per item: ``correct`` (MedVLM-R1's regex letter equals the gold letter) and ``format`` (the format reward)."""
  return {"correct": np.asarray([rl.evaluation_letter(t) == it["answer"] for t, it in zip(texts, items)], float),
          "format": np.asarray([rl.format_reward(t, it) for t, it in zip(texts, items)], float)}


# ---- the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = load_data(config)
  base_dir = config.base_model or train_base_model(config, workdir, data, mesh)
  model, base_params = vlm.load_vlm(base_dir, mesh=mesh)   # FSDP-sharded over the mesh
  tok, improc = llm.load_tokenizer(base_dir), load_image_processor(base_dir)
  test_items = [it for key in sorted(data["test"]) for it in data["test"][key]]
  prompts, pixels, grids = encode_items(tok, improc, data["images"], data["train"] + test_items)
  width = max(map(len, prompts))      # one prompt width for every batch: sampling and updates compile once
  train_enc = (prompts[:len(data["train"])], pixels, grids, width)
  test_enc = (prompts[len(data["train"]):], pixels, grids, width)

  # stage 1: GRPO on the training modality's questions
  params, curve = grpo_run(os.path.join(workdir, "grpo"), model, base_params, tok, train_enc, data["train"], config,
                           mesh)

  # stage 2: greedy evaluation of both policies, per test modality and per question kind
  results = {"num_items/train": len(data["train"]), "grpo/steps": config.grpo.steps}
  texts, scored = {}, {}
  for tag, p in (("base", base_params), ("grpo", params)):
    texts[tag] = greedy_answers(model, p, tok, test_enc, test_items, config)
    scored[tag] = score_answers(texts[tag], test_items)
    results[f"format_rate/{tag}"] = float(scored[tag]["format"].mean())
    results[f"acc/{tag}/all"] = float(scored[tag]["correct"].mean())
  modalities = np.asarray([modality_key(it["modality"]) for it in test_items])
  kinds = np.asarray([it.get("kind", "") for it in test_items])
  for key in sorted(set(modalities)):
    results[f"num_items/test/{key}"] = int((modalities == key).sum())
    for tag in ("base", "grpo"):
      results[f"acc/{tag}/{key}"] = float(scored[tag]["correct"][modalities == key].mean())
  for kind in sorted(set(kinds) - {""}):
    for tag in ("base", "grpo"):
      results[f"acc/{tag}/kind/{kind}"] = float(scored[tag]["correct"][kinds == kind].mean())
  tail = curve[-max(1, len(curve) // 10):]
  results["reward/final"] = float(np.mean([r["reward_mean"] for r in tail]))
  results["reward/first"] = float(curve[0]["reward_mean"])

  # report
  with open(os.path.join(workdir, "completions.jsonl"), "w") as f:
    for i, it in enumerate(test_items):
      f.write(json.dumps({"modality": it["modality"], "kind": it.get("kind", ""), "question": it["question"],
                          "options": it["options"], "answer": it["answer"],
                          **{f"{tag}_completion": texts[tag][i] for tag in texts},
                          **{f"{tag}_correct": bool(scored[tag]["correct"][i]) for tag in texts}}) + "\n")
  plot_rewards(curve, results, os.path.join(workdir, "rewards.png"))
  plot_examples(data["images"], test_items, texts["grpo"], config.eval.examples, os.path.join(workdir, "examples.png"))
  with core.atomic_file(os.path.join(workdir, "metrics.jsonl")) as tmp, open(tmp, "w") as f:
    for run in (["pretrain"] if not config.base_model else []) + ["grpo"]:
      for row in core.read_metrics(os.path.join(workdir, run)):
        f.write(json.dumps({"run": run, **row}) + "\n")
  return core.write_results(workdir, results)


def plot_rewards(curve, results, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  steps = [r["step"] for r in curve]
  fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
  smooth = lambda y: np.convolve(y, np.ones(min(10, len(y))) / min(10, len(y)), mode="valid")  # noqa: E731
  for key, label in (("reward_mean", "total"), ("reward/partial_mean", "accuracy (partial)"),
                     ("reward/format_mean", "format")):
    y = np.asarray([r.get(key, np.nan) for r in curve])
    ax[0].plot(steps, y, alpha=0.3)
    ax[0].plot(steps[len(steps) - len(smooth(y)):], smooth(y), label=label, color=ax[0].lines[-1].get_color())
  ax[0].set(xlabel="GRPO step", ylabel="mean reward (train samples)", title="rewards")
  ax[0].legend(fontsize=8)
  ax[1].plot(steps, [r["completion_len_mean"] for r in curve], label="completion length")
  ax[1].plot(steps, [r["kl"] * 1000 for r in curve], label="KL x 1000")
  ax[1].set(xlabel="GRPO step", title="length and KL")
  ax[1].legend(fontsize=8)
  keys = sorted(k.split("/")[-1] for k in results if k.startswith("acc/base/") and "/kind/" not in k and k != "acc/base/all")
  x = np.arange(len(keys))
  for off, tag in ((-0.2, "base"), (0.2, "grpo")):
    ax[2].bar(x + off, [results[f"acc/{tag}/{k}"] for k in keys], 0.4, label=tag)
  ax[2].set_xticks(x, keys)
  ax[2].set(ylabel="greedy test accuracy", title="by modality")
  ax[2].legend()
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_examples(images, items, texts, n, path):
  """Test images of each modality with the question, the gold letter and the policy's completion."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  by_mod: dict[str, list[int]] = {}
  seen: set[int] = set()
  for i, it in enumerate(items):      # the first question of each image, grouped by modality
    if it["image"] not in seen:
      seen.add(it["image"])
      by_mod.setdefault(it["modality"], []).append(i)
  picks = [i for group in zip(*by_mod.values()) for i in group][:n] or list(range(min(n, len(items))))
  fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 5.2), squeeze=False)
  for ax, i in zip(axes[0], picks):
    it = items[i]
    ax.imshow(images[it["image"]])
    ax.set_axis_off()
    opts = " ".join(f"{k}. {v}" for k, v in sorted(it["options"].items()))
    body = "\n".join(textwrap.wrap(f"{it['question']} {opts} (gold {it['answer']})", 44)
                     + ["---"] + textwrap.wrap(texts[i], 44)[:8])
    ax.set_title(it["modality"], fontsize=9)
    ax.text(0, -0.05, body, transform=ax.transAxes, va="top", fontsize=6.5, family="monospace")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110, bbox_inches="tight")
  plt.close(fig)
