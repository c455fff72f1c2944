"""MedVLM-R1 experiment: a base VLM, GRPO on MRI VQA (no SFT), greedy evaluation in and out of domain.

Stage 0 (:mod:`experiments.medvlm_r1.base`) builds the base on a pretrained
language model (SmolLM2-135M-Instruct by default): a vision tower aligned on
image -> caption pairs with the decoder frozen, then briefly tuned on generic
non-medical visual exercises. ``--config.base_model=<dir>`` skips it and
loads a local Qwen2-VL checkpoint instead.

Stage 1 runs GRPO (``jaxmed.rl`` with the image-conditioned policy of
``jaxmed.vlm.rollout``: each prompt and image prefilled once per group) on the
MRI training questions with MedVLM-R1's rewards and prompt, in
``grpo.epochs`` passes without replacement; a control run rewards the format
alone. Stage 2 decodes greedily on the held-out MRI images (in domain) and
on CT and X-ray (out of domain) with the base, the GRPO policy and the
control, reading the answer with MedVLM-R1's regex.

Writes ``results.json``, ``rewards.png`` (reward curves and accuracies),
``examples.png`` (test images with the base's and the GRPO policy's
completions), ``completions.jsonl`` (greedy test completions of every
policy), ``{grpo,control_format_only}/metrics.jsonl``, ``.../completions.jsonl``
(training samples) and ``.../final`` (the policies; a rerun skips finished
runs).
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np
from PIL import Image

from experiments.medvlm_r1.base import align_base_model
from experiments.medvlm_r1.figures import plot_examples, plot_rewards
from jaxmed import core, llm, rl, vlm
from jaxmed.io import load_vqa_jsonl, medvlm_r1_prompt
from jaxmed.synth import vqa
from jaxmed.vlm.pretrain import DESCRIBE
from jaxmed.vlm.processor import chat_ids, image_message, load_image_processor


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
    out = _capped(config, [Image.fromarray(a) for a in ds["images"]], train,
                  {modality_key(m): items for m, items in test.items()})
    return dict(out, captions=ds["captions"])   # the images' reference captions (the caption probe's key)
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
    return _capped(config, images, train, test)
  raise ValueError(f"config.data.source must be 'synth' or 'jsonl', got {d.source!r}")


def _subset(items: list, n: int, seed) -> list:
  """``n`` of ``items`` drawn without replacement (in their original order); all of them when ``n`` is 0."""
  if not n or n >= len(items):
    return list(items)
  keep = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
  return [items[i] for i in keep]


def _capped(config, images, train, test) -> dict:
  d = config.data
  return {"images": images, "train": _subset(train, d.train_questions, [config.seed, 0]),
          "test": {k: _subset(v, d.test_per_modality, [config.seed, 1 + i])
                   for i, (k, v) in enumerate(sorted(test.items()))}}


def encode_items(tok, improc, images, items) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
  """Prompt ids per item (image placeholders expanded), and the images' ``pixel_values`` ``[I, n, D]`` and
  ``grids`` ``[I, 1, 3]`` (every image has the same patch grid)."""
  vision = improc(images=list(images), return_tensors="np")
  grid = np.asarray(vision["image_grid_thw"])
  if len({tuple(g) for g in grid.tolist()}) != 1:
    raise ValueError(f"the images give different patch grids {sorted({tuple(g) for g in grid.tolist()})}; "
                     "resize them to one size (config.data.image_size)")
  pixels = np.asarray(vision["pixel_values"], np.float32).reshape(len(images), int(np.prod(grid[0])), -1)
  prompts = [chat_ids(tok, [image_message(medvlm_r1_prompt(it))], grid[it["image"]][None], improc.merge_size)
             for it in items]
  return prompts, pixels, grid[:, None]


# ---- stage 1: GRPO ----

def grpo_steps(config, num_questions: int) -> int:
  """Steps for ``grpo.epochs`` passes over ``num_questions`` at ``grpo.prompts_per_step`` questions a step."""
  g = config.grpo
  return max(1, -(-num_questions * g.epochs // g.prompts_per_step))


def epoch_order(num_questions: int, step: int, per_step: int, seed: int) -> list[int]:
  """The question indices of ``step``: epoch ``e`` is a permutation seeded by ``(seed, e)`` and the steps read
  the epochs back to back, so each question is drawn once per epoch (without replacement) and a resumed run
  draws the same ones."""
  out = []
  for k in range(step * per_step, (step + 1) * per_step):
    epoch, i = divmod(k, num_questions)
    out.append(int(np.random.default_rng([seed, epoch]).permutation(num_questions)[i]))
  return out


def grpo_run(run_dir, model, base_params, tok, enc, items, config, mesh, rewards, desc) -> tuple[dict, list[dict]]:
  """GRPO on ``items`` (``enc``: their prompts and the images' pixels, from :func:`encode_items`) from
  ``base_params`` through the shared, resumable :func:`jaxmed.rl.grpo_train` with ``rewards``
  (``{name: weight}``); returns the final params and the per-step metrics."""
  final = os.path.join(run_dir, "final")
  if core.stage_done(final):
    return vlm.load_vlm(final, mesh=mesh, compute_dtype=model.config.text.dtype)[1], core.read_metrics(run_dir)
  g = config.grpo
  prompts, pixels, grids, width = enc

  def examples_at(step):
    return [dict(items[i], prompt_index=i) for i in epoch_order(len(items), step, g.prompts_per_step, config.seed)]

  def sample_fn(params, examples, rng):
    batch = vlm.vlm_rollout(model, params, [prompts[ex["prompt_index"]] for ex in examples],
                            [pixels[ex["image"]] for ex in examples], [grids[ex["image"]] for ex in examples], rng,
                            group_size=g.group_size, max_new_tokens=g.max_new_tokens, temperature=g.temperature,
                            eos_ids=model.config.text.eos_ids, pad_id=tok.pad_token_id, pad_to=width, mesh=mesh)
    return batch, decode(tok, batch)

  logp = lambda entropy: vlm.vlm_logp_fn(model, g.temperature, group_size=g.group_size,  # noqa: E731
                                         chunk=g.vocab_chunk, with_entropy=entropy)
  steps = grpo_steps(config, len(items))
  state, rows = rl.grpo_train(
      run_dir, params=base_params, mesh=mesh, seed=config.seed, logp_fn=logp(True), ref_logp_fn=logp(False),
      sample_fn=sample_fn, examples_at=examples_at,
      tx=rl.grpo_optimizer(g.lr, steps, schedule=g.lr_schedule, max_grad_norm=g.max_grad_norm),
      reward_weights=rewards, steps=steps, group_size=g.group_size, mu=g.mu, epsilon=g.epsilon, beta=g.beta,
      aggregation=g.aggregation, advantage_scale=g.advantage_scale, ref_params=base_params,
      save_every=g.save_every, log_completions_every=g.log_completions_every, desc=desc,
      micro_batch_size=g.micro_batch_size)
  vlm.save_vlm(model, state.params, final)   # gathered one param at a time
  return state.params, rows


def decode(tok, batch) -> list[str]:
  comp, mask = np.asarray(batch["completion"]), np.asarray(batch["mask"]).astype(bool)
  return [tok.decode(c[m], skip_special_tokens=True) for c, m in zip(comp, mask)]


# ---- stage 2: greedy evaluation ----

def greedy_answers(model, params, tok, enc, items, config, desc="evaluate") -> list[str]:
  """Greedy completions for ``items``, in fixed-size chunks (the last one padded) so decoding compiles once."""
  prompts, pixels, grids, width = enc
  size, out = config.eval.batch_size, []
  bar = core.progress_bar(len(items), desc=desc)
  for start in range(0, len(items), size):
    idx = list(range(start, min(start + size, len(items))))
    idx += [idx[-1]] * (size - len(idx))
    batch = vlm.vlm_rollout(model, params, [prompts[i] for i in idx], [pixels[items[i]["image"]] for i in idx],
                            [grids[items[i]["image"]] for i in idx], jax.random.PRNGKey(0), group_size=1,
                            max_new_tokens=config.eval.max_new_tokens, greedy=True,
                            eos_ids=model.config.text.eos_ids, pad_id=tok.pad_token_id, pad_to=width)
    out += decode(tok, batch)[:min(size, len(items) - start)]
    bar.update(min(size, len(items) - start))
  bar.close()
  return out


def score_answers(texts, items) -> dict[str, np.ndarray]:
  """Per item: ``correct`` (MedVLM-R1's evaluation regex reads the gold letter) and ``format`` (the official
  format reward)."""
  return {"correct": np.asarray([rl.evaluation_letter(t) == it["answer"] for t, it in zip(texts, items)], float),
          "format": np.asarray([rl.medvlm_r1_format_reward(t, it) for t, it in zip(texts, items)], float)}


def caption_probe(model, params, tok, enc, merge, data, test_items, config) -> dict[str, float]:
  """What the base reads off a test image, asked the alignment stage's own question (:data:`DESCRIBE`):
  per test modality, the fraction of (up to ``eval.batch_size``) test images whose greedy caption holds the
  reference caption's view ("An axial MRI image"), body part ("of the head showing the brain") and finding
  sentence (lesion or none, and where). ``enc``: :func:`encode_items`' prompts, pixels and grids (the pixels
  are reused). Synthetic data only (it needs reference captions)."""
  _, pixels, grids, _ = enc
  out = {}
  for key in sorted({modality_key(it["modality"]) for it in test_items}):
    images = sorted({it["image"] for it in test_items if modality_key(it["modality"]) == key})[:config.eval.batch_size]
    prompts = [chat_ids(tok, [image_message(DESCRIBE)], grids[i], merge) for i in images]
    batch = vlm.vlm_rollout(model, params, prompts, [pixels[i] for i in images], [grids[i] for i in images],
                            jax.random.PRNGKey(0), group_size=1, max_new_tokens=32, greedy=True,
                            eos_ids=model.config.text.eos_ids, pad_id=tok.pad_token_id)
    said = decode(tok, batch)
    refs = [re.match(r"(.+?) (of .+?)\. (.+)$", data["captions"][i]).groups() for i in images]
    for j, field in enumerate(("view", "part", "finding")):
      out[f"probe/caption_{field}/{key}"] = float(np.mean([ref[j] in text for ref, text in zip(refs, said)]))
  return out


def floors(items, modalities) -> dict[str, float]:
  """Per test modality: ``acc/chance`` (a uniform guess) and ``acc/constant_letter_best`` (the best one letter
  for every question, read off the test labels: it bounds any policy that only learned a letter prior)."""
  out = {}
  for key in sorted(set(modalities)):
    sub = [it for it, m in zip(items, modalities) if m == key]
    gold = [it["answer"] for it in sub]
    out[f"acc/chance/{key}"] = float(np.mean([1 / len(it["options"]) for it in sub]))
    out[f"acc/constant_letter_best/{key}"] = max(gold.count(x) for x in set(gold)) / len(gold)
  return out


# ---- the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = load_data(config)
  base_dir = config.base_model or align_base_model(config, workdir, mesh)
  model, base_params = vlm.load_vlm(base_dir, mesh=mesh, compute_dtype=config.model.compute_dtype)  # FSDP-sharded
  model = llm.with_options(model, remat=config.model.remat, attention=config.model.attention)
  tok, improc = llm.load_tokenizer(base_dir), load_image_processor(base_dir)
  test_items = [it for key in sorted(data["test"]) for it in data["test"][key]]
  prompts, pixels, grids = encode_items(tok, improc, data["images"], data["train"] + test_items)
  width = max(map(len, prompts))      # one prompt width for every batch: sampling and updates compile once
  train_enc = (prompts[:len(data["train"])], pixels, grids, width)
  test_enc = (prompts[len(data["train"]):], pixels, grids, width)
  g = config.grpo
  runs = {"grpo": ("grpo", dict(zip(g.rewards, g.reward_weights)))}
  if config.control.rewards:
    runs["format_only"] = ("control_format_only", {r: 1.0 for r in config.control.rewards})

  results = {"num_items/train": len(data["train"]), "grpo/steps": grpo_steps(config, len(data["train"])),
             "grpo/epochs": g.epochs}
  modalities = np.asarray([modality_key(it["modality"]) for it in test_items])
  kinds = np.asarray([it.get("kind", "") for it in test_items])
  texts, scored, curves = {}, {}, {}

  def evaluate(tag, params):
    texts[tag] = greedy_answers(model, params, tok, test_enc, test_items, config, desc=f"evaluate {tag}")
    scored[tag] = score_answers(texts[tag], test_items)
    results[f"format_rate/{tag}"] = float(scored[tag]["format"].mean())
    results[f"acc/{tag}/all"] = float(scored[tag]["correct"].mean())
    for key in sorted(set(modalities)):
      results[f"acc/{tag}/{key}"] = float(scored[tag]["correct"][modalities == key].mean())
    for kind in sorted(set(kinds) - {""}):
      results[f"acc/{tag}/kind/{kind}"] = float(scored[tag]["correct"][kinds == kind].mean())

  evaluate("base", base_params)   # the base's accuracy before any GRPO step
  if "captions" in data:           # what the base reads off the image, in the alignment stage's own words
    results.update(caption_probe(model, base_params, tok, test_enc, improc.merge_size, data, test_items, config))
  for tag, (run, rewards) in runs.items():
    params, curves[tag] = grpo_run(os.path.join(workdir, run), model, base_params, tok, train_enc, data["train"],
                                   config, mesh, rewards, f"stage 1: GRPO ({tag})")
    evaluate(tag, params)
    del params
  for key in sorted(set(modalities)):
    results[f"num_items/test/{key}"] = int((modalities == key).sum())
  results.update(floors(test_items, modalities))
  # the headline differences on in-domain MRI with paired bootstrap 95% CIs over the test questions
  mri = modalities == "mri"
  for other in ("base", "format_only"):
    if mri.any() and other in scored:
      diff, lo, hi = core.paired_bootstrap(scored["grpo"]["correct"][mri], scored[other]["correct"][mri],
                                           seed=config.seed)
      results[f"acc_diff/grpo_minus_{other}/mri"] = diff
      results[f"acc_diff/grpo_minus_{other}/mri_ci95"] = [lo, hi]
  for tag, curve in curves.items():
    tail = curve[-max(1, len(curve) // 10):]
    results[f"reward/{tag}/first"] = float(curve[0]["reward_mean"])
    results[f"reward/{tag}/final"] = float(np.mean([r["reward_mean"] for r in tail]))
  results["reward/final"] = results["reward/grpo/final"]

  # report
  with open(os.path.join(workdir, "completions.jsonl"), "w") as f:
    for i, it in enumerate(test_items):
      f.write(json.dumps({"modality": it["modality"], "kind": it.get("kind", ""), "question": it["question"],
                          "options": it["options"], "answer": it["answer"],
                          **{f"{tag}_completion": texts[tag][i] for tag in texts},
                          **{f"{tag}_correct": bool(scored[tag]["correct"][i]) for tag in texts}}) + "\n")
  plot_rewards(curves, results, os.path.join(workdir, "rewards.png"))
  plot_examples(data["images"], test_items, {t: texts[t] for t in ("base", "grpo")}, config.eval.examples,
                os.path.join(workdir, "examples.png"))
  with core.atomic_file(os.path.join(workdir, "metrics.jsonl")) as tmp, open(tmp, "w") as f:
    stages = (["align", "tune"] if not config.base_model else []) + [run for run, _ in runs.values()]
    for run in stages:
      for row in core.read_metrics(os.path.join(workdir, run)):
        f.write(json.dumps({"run": run, **row}) + "\n")
  return core.write_results(workdir, results)
