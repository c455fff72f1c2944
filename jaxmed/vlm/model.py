"""Qwen2-VL in Flax Linen: the vision tower's tokens merged into the text sequence of a Qwen2 decoder with M-RoPE.

  model = Qwen2VL(vlm_config)
  logits = model.apply({"params": p}, tokens, positions, mask,
                       pixel_values=pv, patch_pos=pp, patch_seg=ps)              # [B, T, V]

``tokens`` ``[B, T]`` carry one ``image_token_id`` per merged image token
(the processor's expansion of ``<|image_pad|>``); the vision tower's outputs
replace those tokens' embeddings in order (row-major over the batch).
``positions`` ``[3, B, T]`` come from :func:`jaxmed.vlm.positions.mrope_positions`
and ``patch_pos`` / ``patch_seg`` from :func:`~jaxmed.vlm.positions.patch_positions`
and :func:`~jaxmed.vlm.positions.frame_segments` (:func:`prepare_inputs`
builds all three). Without ``pixel_values`` the model is a text-only Qwen2
decoder. With a KV ``cache`` it returns ``(logits, cache)`` like
:class:`jaxmed.llm.Decoder`, whose blocks it reuses.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxmed.llm.model import Decoder
from jaxmed.vlm import positions as P
from jaxmed.vlm.config import VLMConfig
from jaxmed.vlm.vision import VisionTower


def scatter_image_features(tokens, features, image_token_id: int, image_mask=None):
  """``[B, T, H]`` array holding ``features`` ``[M, H]`` at the image-token slots (in order), and the slot mask.

  ``image_mask`` ``[B, T]`` names the slots explicitly (default: ``tokens == image_token_id``), so an image
  token that a policy happens to sample in its completion is not taken for an image slot.
  """
  is_img = tokens == image_token_id if image_mask is None else image_mask.astype(bool)
  slot = jnp.cumsum(is_img.reshape(-1)) - 1
  gathered = features[jnp.clip(slot, 0, features.shape[0] - 1)].reshape(*tokens.shape, features.shape[-1])
  return gathered, is_img


class Qwen2VL(nn.Module):
  config: VLMConfig

  @property
  def text_config(self):
    """The language model's :class:`~jaxmed.llm.LMConfig` (what a KV cache is sized from)."""
    return self.config.text

  @nn.compact
  def __call__(self, tokens, positions=None, mask=None, cache=None, *, pixel_values=None, patch_pos=None,
               patch_seg=None, segment_ids=None, image_mask=None, last_only: bool = False,
               return_hidden: bool = False):
    """``pixel_values`` / ``patch_pos`` / ``patch_seg`` in either :class:`VisionTower` layout (packed, or
    ``[F, n, ...]`` frames of one size with ``patch_seg`` None)."""
    c = self.config
    embeds = embeds_mask = None
    if pixel_values is not None:
      features = VisionTower(c.vision, name="visual")(pixel_values, patch_pos, patch_seg)
      embeds, embeds_mask = scatter_image_features(tokens, features, c.image_token_id, image_mask)
    return Decoder(c.text, name="language_model")(tokens, positions, mask, cache, segment_ids=segment_ids,
                                                  embeds=embeds, embeds_mask=embeds_mask, last_only=last_only,
                                                  return_hidden=return_hidden)


def prepare_inputs(config: VLMConfig, tokens: np.ndarray, mask: np.ndarray, grid_thw) -> dict[str, Any]:
  """Host-side inputs for :class:`Qwen2VL`: ``positions`` ``[3, B, T]``, ``rope_deltas`` ``[B]``,
  ``patch_pos`` ``[N, 2]`` and ``patch_seg`` ``[N]``; checks that the image tokens match ``grid_thw``."""
  m = config.vision.spatial_merge_size
  pos, deltas = P.mrope_positions(tokens, mask, grid_thw, image_token_id=config.image_token_id, merge=m)
  return {"positions": pos, "rope_deltas": deltas, "patch_pos": P.patch_positions(grid_thw, m),
          "patch_seg": P.frame_segments(grid_thw, m)}
