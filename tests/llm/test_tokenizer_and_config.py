"""Tokenizer loading, chat templates, the local BPE trainer, and the config round trip through transformers."""

import os

import pytest

from jaxmed import llm

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "hf")


def test_fixture_tokenizer_and_chat_template():
  tok = llm.load_tokenizer(os.path.join(FIXTURES, "qwen2"))
  text = llm.render_chat(tok, [{"role": "system", "content": "You are a physician."},
                               {"role": "user", "content": "The patient has chest pain."}])
  assert isinstance(text, str)
  assert text.startswith("<|im_start|>system\nYou are a physician.<|im_end|>\n")
  assert text.endswith("<|im_start|>assistant\n")
  ids = tok(text)["input_ids"]
  assert tok.decode(ids) == text  # byte-level BPE is lossless
  assert tok.convert_tokens_to_ids("<|im_end|>") in ids
  with pytest.raises(FileNotFoundError, match="not a directory"):
    llm.load_tokenizer(os.path.join(FIXTURES, "no_such_model"))


def test_train_bpe_tokenizer_round_trips(tmp_path):
  texts = ["lesion in the left lung", "atrial fibrillation on ECG", "the answer is B"] * 50
  tok = llm.train_bpe_tokenizer(texts, str(tmp_path), vocab_size=300)
  again = llm.load_tokenizer(str(tmp_path))
  s = "Fibrillation: lesion 3 cm (left)."
  assert again.decode(again(s)["input_ids"]) == s
  assert len(again("atrial fibrillation")["input_ids"]) < len("atrial fibrillation")  # merges were learned
  assert len(tok) == len(again) <= 300


@pytest.mark.parametrize("family", ["qwen2", "llama", "qwen3"])
def test_config_round_trip_through_transformers(family):
  import transformers

  hf = transformers.AutoConfig.from_pretrained(os.path.join(FIXTURES, family), local_files_only=True)
  config = llm.LMConfig.from_hf(hf)
  assert llm.LMConfig.from_hf(config.to_hf()) == config
  with pytest.raises(ValueError, match="rope_type"):
    bad = config.to_hf()
    bad.rope_parameters = {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}
    llm.LMConfig.from_hf(bad)
