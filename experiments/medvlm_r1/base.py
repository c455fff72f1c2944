"""Stage 0 of the MedVLM-R1 experiment: a base VLM on a pretrained language model (SmolLM2-135M-Instruct).

No small pretrained VLM installs offline, so the base is built the way small
VLMs are (SmolVLM, LLaVA): the pretrained decoder (a registered GGUF name or
a local Hugging Face directory, ``config.language_model``) gets a vision
tower trained here (:mod:`jaxmed.vlm.graft`). What the base sees, in order:

a. **alignment** (``config.align``): image -> caption pairs rendered by
   :mod:`jaxmed.synth.vqa` from cases other than the VQA images' ("An axial
   MRI image of the head showing the brain. The brain looks normal, with no
   lesion."). Only the vision tower, its merger and the four vision tokens'
   embedding rows train; the decoder stays bit-identical (LLaVA's first
   stage). No question, no option, no reasoning text.
b. **visual instruction tuning** (``config.tune``, optional; ``steps=0``
   skips it): the whole model, briefly, on generic non-medical visual
   multiple-choice exercises (:mod:`jaxmed.synth.shapes_vqa`: coloured shapes
   with a worked ``<think>..</think>\\n<answer>X</answer>`` response, asked in
   MedVLM-R1's prompt) mixed with the captions. With ``tune.think="caption"``
   the worked reasoning opens with the picture's own caption, and the shape
   pictures' captions join the caption rows. This stands in for the general
   visual instruction tuning that Qwen2-VL had before MedVLM-R1's GRPO; no
   medical question is in it.

The result is saved as a Qwen2-VL checkpoint (``<workdir>/base_model``, with
the tokenizer, its vision tokens and chat template, and the image
processor) that :func:`jaxmed.vlm.load_vlm` and transformers load.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import optax
from PIL import Image

from jaxmed import core, llm, vlm
from jaxmed.io import medvlm_r1_prompt
from jaxmed.rl.loop import place_state
from jaxmed.synth import vqa
from jaxmed.synth.shapes_vqa import shape_exercises
from jaxmed.vlm.graft import alignment_optimizer
from jaxmed.vlm.pretrain import caption_loss, caption_rows
from jaxmed.vlm.processor import make_image_processor


def grafted_base(config):
  """``(model, params, tokenizer, new_rows)`` of :func:`jaxmed.vlm.vlm_on_pretrained` on ``config.language_model``
  with the vision tower of ``config.model``."""
  m = config.model
  return vlm.vlm_on_pretrained(llm.checkpoint_dir(config.language_model),
                               vlm.VisionConfig(depth=m.vision_depth, embed_dim=m.vision_dim, out_dim=1,
                                                num_heads=m.vision_heads),
                               image_size=config.data.image_size, seed=config.seed)


def _run(params, loss_fn, tx, sources, run_dir, steps, config, mesh, desc) -> dict:
  """``steps`` of ``tx`` on ``loss_fn`` from ``params``, resumable in ``run_dir``; returns the params (host)."""
  state, sharding = place_state(params, tx, config.seed, mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  batches = {k: core.step_batches(core.ArraySource(v), batch_size=b, seed=config.seed + i)
             for i, (k, (v, b)) in enumerate(sorted(sources.items()))}
  state = core.train_loop(state, step, lambda s: {k: ds[s] for k, ds in batches.items()}, mesh=mesh,
                          run_dir=run_dir, steps=steps, save_every=config.train.save_every, keep=config.train.keep,
                          log_every=config.train.log_every, desc=desc)
  return jax.device_get(state.params)


def align_base_model(config, workdir: str, mesh) -> str:
  """Stages 0a and 0b (module docstring); returns ``<workdir>/base_model``. Each stage resumes from its own
  checkpoints, and a finished base is reused."""
  out = os.path.join(workdir, "base_model")
  if core.stage_done(out):   # written atomically with its tokenizer and image processor
    return out
  d, a, t = config.data, config.align, config.tune
  model, params, tok, new_rows = grafted_base(config)
  improc = make_image_processor()
  corpus = vqa.make_dataset(d.caption_images, size=d.image_size, seed=config.seed + 1)   # other cases than VQA's
  captions = caption_rows(model.config, tok, improc, [Image.fromarray(x) for x in corpus["images"]],
                          corpus["captions"], seq_len=a.seq_len)

  def caption_only(p, batch, rng):
    del rng
    loss, aux = caption_loss(model, p, batch["caption"])
    return loss, {"caption_loss": loss, "caption_token_accuracy": aux["token_accuracy"]}

  tx = alignment_optimizer(optax.adamw(optax.warmup_cosine_decay_schedule(0.0, a.lr, a.warmup, a.steps),
                                       weight_decay=0.0), params, new_rows)
  params = _run(params, caption_only, tx, {"caption": (captions, a.batch_size)}, os.path.join(workdir, "align"),
                a.steps, config, mesh, "stage 0a: align the vision tower (LM frozen)")

  if t.steps:
    shapes = shape_exercises(t.visual_exercises, size=d.image_size, seed=config.seed + 2, think=t.think)
    shape_images = [Image.fromarray(x) for x in shapes["images"]]
    if t.think == "caption":   # the pictures' own captions join the caption rows: one meaning of "describe"
      extra = caption_rows(model.config, tok, improc, shape_images, [it["caption"] for it in shapes["items"]],
                           seq_len=a.seq_len)
      captions = {k: np.concatenate([captions[k], extra[k]]) for k in captions}
    visual = caption_rows(model.config, tok, improc, shape_images,
                          [it["response"] for it in shapes["items"]], seq_len=t.seq_len,
                          instruction=[medvlm_r1_prompt(it) for it in shapes["items"]])

    def tune_loss(p, batch, rng):
      del rng
      cap, aux_c = caption_loss(model, p, batch["caption"])
      vis, aux_v = caption_loss(model, p, batch["visual"])
      return cap + vis, {"caption_loss": cap, "visual_loss": vis, "visual_token_accuracy": aux_v["token_accuracy"]}

    tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, t.lr, t.warmup, t.steps), weight_decay=0.0)
    params = _run(params, tune_loss, tx, {"caption": (captions, t.caption_batch), "visual": (visual, t.visual_batch)},
                  os.path.join(workdir, "tune"), t.steps, config, mesh, "stage 0b: generic visual instruction tuning")
  vlm.save_vlm(model, params, out, extras=(tok, improc))
  return out
