"""Causal language-model training on packed documents (used to train small base models from scratch).

:func:`pack_documents` concatenates tokenised documents into rows of
``seq_len`` tokens with ``segment_ids`` so attention never crosses a document
boundary and positions restart per document; :func:`causal_lm_loss` is the
next-token cross-entropy over real tokens whose predecessor is in the same
document (and, with an optional ``loss_mask``, only over the targets it marks:
e.g. the predictable part of synthetic rows, while the whole row stays visible
to attention).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def pack_documents(docs: Sequence[Sequence[int]], seq_len: int, *, pad_id: int = 0) -> dict[str, np.ndarray]:
  """Greedy first-fit packing: ``tokens``, ``mask``, ``segment_ids`` ``[R, seq_len]`` (int32).

  Documents longer than ``seq_len`` are cut into ``seq_len`` pieces. Padding
  has mask 0 and its own segment id.
  """
  pieces = [list(d[i:i + seq_len]) for d in docs for i in range(0, max(len(d), 1), seq_len) if len(d)]
  rows: list[list[list[int]]] = []
  fill: list[int] = []
  for piece in sorted(pieces, key=len, reverse=True):
    for r, used in enumerate(fill):
      if used + len(piece) <= seq_len:
        rows[r].append(piece)
        fill[r] += len(piece)
        break
    else:
      rows.append([piece])
      fill.append(len(piece))
  tokens = np.full((len(rows), seq_len), pad_id, np.int32)
  mask = np.zeros((len(rows), seq_len), np.int32)
  segments = np.zeros((len(rows), seq_len), np.int32)
  for r, row in enumerate(rows):
    at = 0
    for s, piece in enumerate(row):
      tokens[r, at:at + len(piece)], mask[r, at:at + len(piece)], segments[r, at:at + len(piece)] = piece, 1, s + 1
      at += len(piece)
    segments[r, at:] = len(row) + 1
  return {"tokens": tokens, "mask": mask, "segment_ids": segments}


def causal_lm_loss(model, params: Any, batch: dict[str, jax.Array], *, positions=None,
                   model_inputs: dict | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean next-token cross-entropy over targets that are real and in the predecessor's document.

  ``batch``: ``tokens``, ``mask`` (real tokens, also the attention mask), ``segment_ids`` ``[B, T]``, and
  optionally ``loss_mask`` ``[B, T]``: 1 where token ``t`` counts as a target (default: every real token).
  ``positions`` (e.g. M-RoPE's ``[3, B, T]``; default: restarting per segment) and ``model_inputs``
  (e.g. a VLM's images) go to the model as they are.
  """
  tokens, mask, seg = batch["tokens"], batch["mask"].astype(bool), batch["segment_ids"]
  logits = model.apply({"params": params}, tokens, positions, mask, segment_ids=seg, **(model_inputs or {}))
  logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
  nll = -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
  valid = mask[:, 1:] & mask[:, :-1] & (seg[:, 1:] == seg[:, :-1])
  if "loss_mask" in batch:
    valid = valid & batch["loss_mask"][:, 1:].astype(bool)
  valid = valid.astype(nll.dtype)
  loss = jnp.sum(nll * valid) / jnp.maximum(jnp.sum(valid), 1.0)
  acc = jnp.sum((jnp.argmax(logp, -1) == tokens[:, 1:]) * valid) / jnp.maximum(jnp.sum(valid), 1.0)
  return loss, {"token_accuracy": acc}
