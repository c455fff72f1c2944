"""Tokenizers and chat templates through transformers, and small BPE tokenizers trained locally.

Real checkpoints bring their tokenizer (``tokenizer.json`` and
``tokenizer_config.json`` with a chat template): :func:`load_tokenizer` reads
it from a local directory. Synthetic-world models get a byte-level BPE trained
by :func:`train_bpe_tokenizer` and saved in the same HF format, so both go
through the same code path.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from jaxmed.core.checkpoint import reading_checkpoint

# ChatML, as used by Qwen: <|im_start|>role\ncontent<|im_end|>\n ...
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def load_tokenizer(local_dir: str):
  """``transformers.AutoTokenizer`` from a local directory (never downloads)."""
  from transformers import AutoTokenizer

  if not os.path.isdir(local_dir):
    raise FileNotFoundError(f"load_tokenizer: {local_dir!r} is not a directory (give a local checkpoint folder)")
  with reading_checkpoint(local_dir, "a tokenizer (tokenizer.json, tokenizer_config.json)"):
    return AutoTokenizer.from_pretrained(local_dir, local_files_only=True)


def render_chat(tokenizer, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
  """The chat template rendered to a string.

  transformers 5 may return a ``BatchEncoding``-like object or a list for
  ``apply_chat_template``; with ``tokenize=False`` we always hand back ``str``.
  """
  out = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
  if isinstance(out, list):
    if len(out) != 1:
      raise ValueError(f"render_chat: expected one rendered conversation, got {len(out)}")
    out = out[0]
  if not isinstance(out, str):
    raise TypeError(f"render_chat: apply_chat_template returned {type(out).__name__}, expected str")
  return out


def train_bpe_tokenizer(texts: Iterable[str], out_dir: str, *, vocab_size: int = 512,
                        chat_template: str = CHATML_TEMPLATE, extra_special_tokens: Sequence[str] = ()):
  """Trains a byte-level BPE on ``texts`` and saves it in HF format in ``out_dir``; returns the HF tokenizer.

  The special tokens are ChatML's (``<|endoftext|>`` is the pad token,
  ``<|im_end|>`` the EOS), then ``extra_special_tokens`` (e.g. a VLM's image
  placeholders). The vocabulary has at least the 256 bytes plus the special tokens.
  """
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast

  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS) + list(extra_special_tokens),
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  tok.train_from_iterator(texts, trainer)
  hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               bos_token=None, unk_token=None)
  hf.chat_template = chat_template
  os.makedirs(out_dir, exist_ok=True)
  hf.save_pretrained(out_dir)
  return hf
