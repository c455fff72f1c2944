"""GRPO pieces for a vision-language policy: image-conditioned rollouts and the matching log-prob function.

:mod:`jaxmed.rl.step` is generic over the policy's inputs; this module
supplies them for :class:`~jaxmed.vlm.model.Qwen2VL`. A batch row is one
completion and carries its own image, so the update can split rows over a
device mesh like any other leaf:

  batch = vlm_rollout(model, params, prompts, images, rng, group_size=G, ...)   # each prompt prefilled once
  update = make_grpo_step(vlm_logp_fn(model, temperature, group_size=G), tx, ...)   # jaxmed.rl; or rl.grpo_train

Per-row image leaves: ``pixel_values`` ``[B, n, C*T*P*P]`` and ``patch_pos``
``[B, n, 2]``, where every prompt has exactly one image of the same patch
grid (resize images to one size first), so the vision tower attends per
image; and
``positions`` ``[B, 3, P + T]``, the M-RoPE positions of prompt plus
completion (batch-major so that row sharding applies to it too).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.core.mesh import batch_sharding
from jaxmed.llm.sampler import generate, left_pad, token_logprobs
from jaxmed.rl.logprobs import shared_prefix_logp
from jaxmed.vlm.model import prepare_inputs


def _row_images(pixel_values: Sequence[np.ndarray], grids: Sequence[np.ndarray]):
  grids = [np.asarray(g).reshape(-1, 3) for g in grids]
  if any(len(g) != 1 for g in grids):
    raise ValueError("vlm_rollout: each prompt must have exactly one image (got grids "
                     f"{[g.tolist() for g in grids]})")
  if any(int(g[0][0]) != 1 for g in grids):
    raise ValueError("vlm_rollout: images only (grid t = 1), got grids "
                     f"{sorted({tuple(int(x) for x in g[0]) for g in grids})}")
  if len({tuple(g[0]) for g in grids}) != 1:
    raise ValueError(f"vlm_rollout: every image in a batch needs the same patch grid, got "
                     f"{sorted({tuple(int(x) for x in g[0]) for g in grids})}; resize the images to one size")
  return np.stack([np.asarray(p, np.float32) for p in pixel_values]), np.stack([g[0] for g in grids])


def image_inputs(batch: Mapping[str, jax.Array], image_mask=None) -> dict[str, jax.Array]:
  """The batch's per-row image leaves as :class:`Qwen2VL` inputs (frames of one size: attention per image)."""
  return {"pixel_values": batch["pixel_values"], "patch_pos": batch["patch_pos"], "patch_seg": None,
          "image_mask": image_mask}


def vlm_rollout(model, params, prompts: Sequence[Sequence[int]], pixel_values: Sequence[np.ndarray],
                grids: Sequence[np.ndarray], rng: jax.Array, *, group_size: int, max_new_tokens: int,
                temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, greedy: bool = False,
                eos_ids: tuple[int, ...] = (), pad_id: int = 0, pad_to: int = 0,
                mesh: jax.sharding.Mesh | None = None) -> dict[str, Any]:
  """``G`` completions per (prompt, image), grouped contiguously: :func:`jaxmed.rl.rollout` plus image leaves.

  ``prompts``: token ids with the image placeholders already expanded;
  ``pixel_values[i]`` ``[n, C*T*P*P]`` and ``grids[i]`` ``[1, 3]`` from the
  image processor for prompt ``i``. ``greedy`` decodes by argmax (evaluation). ``mesh``: decoding splits
  the rows over ``data x fsdp``.
  """
  pix, grid = _row_images(pixel_values, grids)
  tokens, mask = left_pad(prompts, pad_id, pad_to)
  prep = prepare_inputs(model.config, tokens, mask, grid)
  n = pix.shape[1]
  patch_pos = prep["patch_pos"].reshape(-1, n, 2)
  # each (prompt, image) is prefilled once and its KV cache repeated for the G samples
  out = generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), rng, max_new_tokens=max_new_tokens,
                 temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, eos_ids=tuple(eos_ids),
                 pad_id=pad_id, num_samples=group_size, rows=None if mesh is None else batch_sharding(mesh),
                 prompt_positions=jnp.asarray(prep["positions"]), position_offset=jnp.asarray(prep["rope_deltas"]),
                 model_inputs=image_inputs({"pixel_values": jnp.asarray(pix), "patch_pos": jnp.asarray(patch_pos)}))
  # completion positions as the sampler used them: the next 1D position (+ rope delta) on every axis,
  # counted from the prompt only, so a sampled image token in a completion is just text
  t = out["tokens"].shape[1]
  nxt = mask.sum(1) + prep["rope_deltas"]
  completion_pos = np.broadcast_to((nxt[:, None] + np.arange(t))[None], (3, len(tokens), t))
  positions = np.concatenate([prep["positions"], completion_pos], axis=2)
  rep = lambda x: jnp.asarray(np.repeat(np.asarray(x), group_size, axis=0))  # noqa: E731
  # every leaf has one row per completion, so a batch splits over a mesh like any other
  return {"prompt": rep(tokens), "prompt_mask": rep(mask), "completion": out["tokens"],
          "mask": out["completion_mask"], "old_logp": out["logprobs"],
          "positions": rep(positions.transpose(1, 0, 2)), "pixel_values": rep(pix), "patch_pos": rep(patch_pos)}


def vlm_logp_fn(model, temperature: float = 1.0, *, group_size: int | None = None, chunk: int = 8192,
                with_entropy: bool = False) -> Callable[[Any, Mapping[str, jax.Array]], Any]:
  """``(params, batch) -> [B, T]`` log-probs of ``batch["completion"]`` given prompt and image.

  With ``group_size`` (rows grouped as :func:`vlm_rollout` makes them), each (prompt, image) is encoded once
  and the head applied in vocabulary chunks (:func:`jaxmed.rl.logprobs.shared_prefix_logp`; ``with_entropy``
  also returns the per-token entropy). Without it: one pass over the concatenated sequences.
  """
  if group_size is not None:
    def shared(params, batch):
      p = batch["prompt"].shape[1]
      first = lambda x: x[::group_size]  # noqa: E731
      return shared_prefix_logp(
          model, params, batch, group_size=group_size, temperature=temperature, chunk=chunk,
          with_entropy=with_entropy, prompt_positions=first(batch["positions"][:, :, :p]).transpose(1, 0, 2),
          completion_positions=batch["positions"][:, :, p:].transpose(1, 0, 2),
          prompt_inputs=image_inputs({"pixel_values": first(batch["pixel_values"]),
                                      "patch_pos": first(batch["patch_pos"])},
                                     first(batch["prompt"]) == model.config.image_token_id))
    return shared
  if with_entropy:
    raise ValueError("vlm_logp_fn: with_entropy needs group_size (the shared-prefix path)")

  def logp_fn(params, batch):
    full = jnp.concatenate([batch["prompt"], batch["completion"]], axis=1)
    mask = jnp.concatenate([batch["prompt_mask"], batch["mask"].astype(batch["prompt_mask"].dtype)], axis=1)
    image_mask = jnp.concatenate([batch["prompt"] == model.config.image_token_id,
                                  jnp.zeros(batch["completion"].shape, bool)], axis=1)
    lp = token_logprobs(model, params, full, mask, temperature, positions=batch["positions"].transpose(1, 0, 2),
                        model_inputs=image_inputs(batch, image_mask))
    return lp[:, batch["prompt"].shape[1] - 1:]

  return logp_fn
