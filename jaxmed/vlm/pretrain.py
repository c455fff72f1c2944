"""Image-to-text pretraining rows for a small base VLM (image -> caption), with the loss on the answer only.

  rows = caption_rows(config, tok, image_processor, images, captions, seq_len=96)
  loss, aux = caption_loss(model, params, batch)       # batch: rows indexed by a step's examples

Each row is one chat: the user turn holds the image and ``instruction``, the
assistant turn the caption. Rows are right-padded to ``seq_len`` (one image
per row, all of one size, so batches use the vision tower's per-frame layout)
and only the assistant's tokens (and its end-of-turn) are targets.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from jaxmed.llm.pretrain import causal_lm_loss
from jaxmed.vlm.model import prepare_inputs
from jaxmed.vlm.processor import chat_ids, image_message

DESCRIBE = "Describe the image."   # the user's text of a caption row (and of a probe that asks for the caption)


def caption_rows(config, tokenizer, image_processor, images: Sequence[Any], captions: Sequence[str], *,
                 seq_len: int, instruction: str | Sequence[str] = DESCRIBE) -> dict[str, np.ndarray]:
  """``tokens``, ``mask``, ``loss_mask``, ``segment_ids`` ``[R, seq_len]``, ``positions`` ``[R, 3, seq_len]``,
  ``pixel_values`` ``[R, n, C*T*P*P]`` and ``patch_pos`` ``[R, n, 2]``. ``instruction`` is the user's text,
  one for all rows or one per row (e.g. a question, with the worked answer as the "caption")."""
  if len(images) != len(captions):
    raise ValueError(f"caption_rows: {len(images)} images but {len(captions)} captions")
  vision = image_processor(images=list(images), return_tensors="np")
  grid = np.asarray(vision["image_grid_thw"])
  if len({tuple(g) for g in grid.tolist()}) != 1:
    raise ValueError(f"caption_rows: the images give different patch grids {sorted({tuple(g) for g in grid.tolist()})}"
                     "; resize them to one size")
  n = int(np.prod(grid[0]))
  merge = image_processor.merge_size
  tokens = np.full((len(captions), seq_len), tokenizer.pad_token_id, np.int32)
  mask = np.zeros_like(tokens)
  loss_mask = np.zeros_like(tokens)
  instructions = [instruction] * len(captions) if isinstance(instruction, str) else list(instruction)
  if len(instructions) != len(captions):
    raise ValueError(f"caption_rows: {len(instructions)} instructions but {len(captions)} captions")
  for r, (g, text) in enumerate(zip(grid, captions)):
    user = [image_message(instructions[r])]
    p_ids = chat_ids(tokenizer, user, g[None], merge)
    ids = chat_ids(tokenizer, user + [{"role": "assistant", "content": text}], g[None], merge,
                   add_generation_prompt=False)
    if len(ids) > seq_len:
      raise ValueError(f"caption_rows: row {r} has {len(ids)} tokens, more than seq_len={seq_len}")
    if ids[:len(p_ids)] != p_ids:
      raise ValueError("caption_rows: the chat template does not extend the prompt with the answer")
    tokens[r, :len(ids)], mask[r, :len(ids)] = ids, 1
    loss_mask[r, len(p_ids):len(ids)] = 1
  prep = prepare_inputs(config, tokens, mask, grid)
  return {"tokens": tokens, "mask": mask, "loss_mask": loss_mask, "segment_ids": mask.copy(),
          "positions": prep["positions"].transpose(1, 0, 2),
          "pixel_values": np.asarray(vision["pixel_values"], np.float32).reshape(len(captions), n, -1),
          "patch_pos": prep["patch_pos"].reshape(len(captions), n, 2)}


def caption_loss(model, params, batch):
  """:func:`jaxmed.llm.causal_lm_loss` with the batch's M-RoPE positions and per-row images."""
  return causal_lm_loss(model, params, batch, positions=batch["positions"].transpose(1, 0, 2),
                        model_inputs={"pixel_values": batch["pixel_values"], "patch_pos": batch["patch_pos"],
                                      "patch_seg": None})
