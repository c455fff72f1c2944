"""Qwen2-VL inputs: transformers' image processor, image placeholders and a chat template.

Images go through transformers' NumPy/PIL ``Qwen2VLImageProcessorPil``
(resize to multiples of ``patch * merge`` within ``[min_pixels,
max_pixels]``, rescale, CLIP mean/std, patchify), which returns
``pixel_values`` ``[N, C*T*P*P]`` and ``image_grid_thw`` ``[images, 3]``. A
real checkpoint's ``preprocessor_config.json`` is read by
:func:`load_image_processor`. The text side is the tokenizer's chat template
with ``<|vision_start|><|image_pad|><|vision_end|>`` per image;
:func:`expand_image_tokens` repeats each ``<|image_pad|>`` ``t * h * w /
merge**2`` times, which is what ``Qwen2VLProcessor`` does (that class also
wants a video processor, which needs torchvision, so it is not used).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
IMAGE_PAD = "<|image_pad|>"

# ChatML whose message content is a string or a list of {"type": "image"} / {"type": "text", "text": ...} parts
VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_image_processor(*, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 256, patch_size: int = 14,
                         temporal_patch_size: int = 2, merge_size: int = 2):
  """transformers' Qwen2-VL image processor (PIL backend: no torch needed)."""
  from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

  return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size,
                                  temporal_patch_size=temporal_patch_size, merge_size=merge_size)


def load_image_processor(local_dir: str):
  """The image processor saved in a local checkpoint directory (``preprocessor_config.json``; never downloads)."""
  from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

  path = os.path.join(local_dir, "preprocessor_config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"load_image_processor: {path} is missing")
  return Qwen2VLImageProcessorPil.from_pretrained(local_dir, local_files_only=True)


def expand_image_tokens(text: str, grid_thw: np.ndarray, merge: int) -> str:
  """Each ``<|image_pad|>`` in ``text`` repeated ``t * h * w / merge**2`` times, image by image."""
  parts = text.split(IMAGE_PAD)
  if len(parts) - 1 != len(grid_thw):
    raise ValueError(f"expand_image_tokens: the text has {len(parts) - 1} {IMAGE_PAD} placeholders but "
                     f"{len(grid_thw)} images were given")
  out = [parts[0]]
  for g, rest in zip(grid_thw, parts[1:]):
    out.append(IMAGE_PAD * int(np.prod(g) // merge ** 2) + rest)
  return "".join(out)


def image_message(text: str, role: str = "user") -> dict[str, Any]:
  """One chat turn holding one image, then ``text``."""
  return {"role": role, "content": [{"type": "image"}, {"type": "text", "text": text}]}


def chat_ids(tokenizer, messages: Sequence[dict[str, Any]], grid_thw: np.ndarray, merge: int, *,
             add_generation_prompt: bool = True) -> list[int]:
  """Token ids of ``messages`` rendered with the tokenizer's chat template, image placeholders expanded."""
  from jaxmed.llm.tokenizer import render_chat

  text = render_chat(tokenizer, messages, add_generation_prompt=add_generation_prompt)
  return tokenizer(expand_image_tokens(text, grid_thw, merge), add_special_tokens=False)["input_ids"]


def encode(tokenizer, image_processor, messages: Sequence[dict[str, Any]], images: Sequence[Any], *,
           add_generation_prompt: bool = True) -> dict[str, np.ndarray]:
  """One conversation -> ``input_ids`` ``[T]`` (int32), ``pixel_values`` ``[N, C*T*P*P]``, ``image_grid_thw``."""
  from jaxmed.llm.tokenizer import render_chat

  text = render_chat(tokenizer, messages, add_generation_prompt=add_generation_prompt)
  if images:
    vision = image_processor(images=list(images), return_tensors="np")
    pixel_values, grid = np.asarray(vision["pixel_values"], np.float32), np.asarray(vision["image_grid_thw"])
  else:
    pixel_values, grid = np.zeros((0, 0), np.float32), np.zeros((0, 3), np.int64)
  text = expand_image_tokens(text, grid, image_processor.merge_size)
  ids = np.asarray(tokenizer(text, add_special_tokens=False)["input_ids"], np.int32)
  return {"input_ids": ids, "pixel_values": pixel_values, "image_grid_thw": grid}
