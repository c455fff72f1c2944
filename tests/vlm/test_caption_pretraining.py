"""Caption pretraining of a tiny VLM on the synthetic VQA world: the model learns to read the image."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jaxmed import llm, vlm
from jaxmed.synth import vqa
from jaxmed.vlm.pretrain import caption_loss, caption_rows
from jaxmed.vlm.processor import VISION_TOKENS, VL_CHAT_TEMPLATE, make_image_processor


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  data = vqa.make_dataset(96, size=56, seed=3)
  tok = llm.train_bpe_tokenizer(data["captions"] + ["Describe the image."] * 20, str(tmp_path_factory.mktemp("tok")), vocab_size=600,
                                chat_template=VL_CHAT_TEMPLATE, extra_special_tokens=VISION_TOKENS)
  ids = {t: tok.convert_tokens_to_ids(t) for t in VISION_TOKENS}
  text = llm.LMConfig(family="qwen2", vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_layers=2,
                      num_heads=4, num_kv_heads=2, head_dim=16, qkv_bias=True, tie_embeddings=True,
                      eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), mrope_section=(2, 3, 3))
  config = vlm.VLMConfig(text, vlm.VisionConfig(depth=1, embed_dim=32, out_dim=64, num_heads=2, mlp_ratio=2),
                         image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                         vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
  model = vlm.Qwen2VL(config)
  rows = caption_rows(config, tok, make_image_processor(), [Image.fromarray(a) for a in data["images"]],
                      data["captions"], seq_len=96)
  train = {k: v[:80] for k, v in rows.items()}
  test = {k: jnp.asarray(v[80:]) for k, v in rows.items()}
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(train["tokens"][:1]),
                      jnp.asarray(train["positions"][:1].transpose(1, 0, 2)),
                      pixel_values=jnp.asarray(train["pixel_values"][:1]),
                      patch_pos=jnp.asarray(train["patch_pos"][:1]))["params"]
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, batch):
    (loss, _), g = jax.value_and_grad(lambda p: caption_loss(model, p, batch), has_aux=True)(params)
    upd, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, upd), opt, loss

  rng = np.random.default_rng(0)
  for _ in range(150):
    idx = rng.choice(80, 16, replace=False)
    params, opt, _ = step(params, opt, {k: jnp.asarray(v[idx]) for k, v in train.items()})
  return model, params, test


def test_captions_need_the_image(trained):
  """Held-out captions are likelier under their own image than under another case's image."""
  model, params, test = trained
  own = float(caption_loss(model, params, test)[0])
  swapped = dict(test, pixel_values=jnp.roll(test["pixel_values"], 1, axis=0))
  other = float(caption_loss(model, params, swapped)[0])
  print(f"caption loss, own image {own:.3f}, another case's image {other:.3f}")
  assert own < 0.8 * other, (own, other)
