"""Registration networks: the VoxelMorph UNet, and the builder for it, LKU-Net and TransMorph.

Each maps ``(moving, fixed)`` of shape ``[B, *S, 1]`` (n = 2 or 3 spatial
axes, each divisible by ``2**len(encoder)``) to a field ``[B, *S, n]``. The
:class:`RegistrationNet` wrapper turns that field into a displacement: used
directly (``transform="disp"``) or as a stationary velocity field integrated
by scaling and squaring (``transform="svf"``). Every kernel, bias and PReLU
slope is an ordinary Flax param, so a hypernetwork can generate all of them.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmed.registration.warp import integrate_svf


class ConvAct(nn.Module):
  """``k^n`` convolution then LeakyReLU(0.2), as in VoxelMorph."""
  features: int
  ndim: int
  kernel: int = 3

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, (self.kernel,) * self.ndim, padding="SAME")(x)
    return nn.leaky_relu(x, 0.2)


class LKBlock(nn.Module):
  """Large-kernel block of LKU-Net (Jia et al. 2022): ``k^n + 3^n + 1^n`` convs plus identity, then PReLU.

  The three parallel convolutions and the identity path are summed, which
  gives a large receptive field while keeping the small-kernel detail.
  """
  features: int
  ndim: int
  kernel: int = 5

  @nn.compact
  def __call__(self, x):
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1,) * self.ndim, name="project")(x)
    y = x
    for k in (self.kernel, 3, 1):
      y = y + nn.Conv(self.features, (k,) * self.ndim, padding="SAME", name=f"conv{k}")(x)
    return nn.PReLU(negative_slope_init=0.2)(y)


class RegUNet(nn.Module):
  """The VoxelMorph UNet over the concatenated pair (LKU-Net is :class:`~jaxmed.registration.lkunet.LKUNet`).

  Attributes:
    ndim: number of spatial axes.
    encoder: features per encoder level; each level is a conv block then 2x max pooling.
    decoder: features per decoder level; each is a conv block, 2x upsampling and a skip concat.
    final: features of the full-resolution blocks before the flow head.
    remat: ``jax.checkpoint`` each level's block.
  """
  ndim: int = 2
  encoder: Sequence[int] = (16, 32, 32, 32)
  decoder: Sequence[int] = (32, 32, 32, 32)
  final: Sequence[int] = (32, 16, 16)
  remat: bool = False

  def _block(self, features):
    return (nn.remat(ConvAct) if self.remat else ConvAct)(features, self.ndim)

  @nn.compact
  def __call__(self, moving, fixed):
    factor = 2 ** len(self.encoder)
    if any(s % factor for s in moving.shape[1:-1]):
      raise ValueError(f"RegUNet: spatial shape {moving.shape[1:-1]} must be divisible by {factor}")
    x = jnp.concatenate([moving, fixed], axis=-1)
    skips = []
    for f in self.encoder:
      x = self._block(f)(x)
      skips.append(x)
      x = nn.max_pool(x, (2,) * self.ndim, (2,) * self.ndim)
    for f in self.decoder:
      x = self._block(f)(x)
      for axis in range(1, self.ndim + 1):
        x = jnp.repeat(x, 2, axis=axis)
      x = jnp.concatenate([x, skips.pop()], axis=-1)
    for f in self.final:
      x = ConvAct(f, self.ndim)(x)
    # A near-zero head starts every model at the identity transform (VoxelMorph: N(0, 1e-5)).
    return nn.Conv(self.ndim, (3,) * self.ndim, padding="SAME", name="flow",
                   kernel_init=nn.initializers.normal(1e-5), bias_init=nn.initializers.zeros)(x)


class RegistrationNet(nn.Module):
  """Network plus transformation model: returns ``(displacement, field)``, both ``[B, *S, n]``.

  ``field`` is what the network predicts (the displacement itself for
  ``"disp"``, the velocity for ``"svf"``) and is what the smoothness loss
  penalises, as in VoxelMorph. With ``svf_half_res`` the velocity is
  integrated at half resolution and the displacement upsampled (linear,
  values doubled), as HyperMorph / VoxelMorph-diff do: ``2^n`` times less
  work in the ``int_steps`` squarings.
  """
  unet: nn.Module
  transform: str = "svf"
  int_steps: int = 7
  svf_half_res: bool = False

  @nn.compact
  def __call__(self, moving, fixed):
    field = self.unet(moving, fixed).astype(jnp.float32)  # the transformation model runs in float32
    if self.transform == "disp":
      return field, field
    if self.transform != "svf":
      raise ValueError(f"transform must be 'disp' or 'svf', got {self.transform!r}")
    if not self.svf_half_res:
      return integrate_svf(field, steps=self.int_steps), field
    b, *s, n = field.shape
    half = jax.image.resize(field, (b, *(x // 2 for x in s), n), "linear") / 2.0
    disp = integrate_svf(half, steps=self.int_steps)
    return jax.image.resize(disp, field.shape, "linear") * 2.0, field


ARCHITECTURES = ("vxm", "lku", "tm")


def registration_net(arch: str, transform: str, *, ndim: int, encoder=(16, 32, 32, 32),
                     decoder=(32, 32, 32, 32), final=(32, 16, 16), int_steps: int = 7, lku_start: int = 8,
                     tm_embed: int = 16, tm_depths=(2, 2, 2), tm_heads=(2, 2, 4), tm_window=4,
                     svf_half_res: bool = False, remat: bool = False) -> RegistrationNet:
  """Builds a :class:`RegistrationNet` for ``arch`` in :data:`ARCHITECTURES`.

  ``"vxm"``: the VoxelMorph UNet (``encoder``, ``decoder``, ``final``).
  ``"lku"``: LKU-Net (:class:`~jaxmed.registration.lkunet.LKUNet`, ``lku_start``
  channels, ``len(encoder)`` levels). ``"tm"``: TransMorph
  (:class:`~jaxmed.registration.transmorph.TransMorph`). ``remat`` wraps each
  encoder level / Swin block in ``jax.checkpoint`` (vxm: each UNet level).
  """
  from jaxmed.registration.lkunet import LKUNet
  from jaxmed.registration.transmorph import TransMorph
  if arch == "vxm":
    unet = RegUNet(ndim=ndim, encoder=tuple(encoder), decoder=tuple(decoder), final=tuple(final), remat=remat)
  elif arch == "lku":
    unet = LKUNet(ndim=ndim, start=lku_start, levels=len(encoder), remat=remat)
  elif arch == "tm":
    unet = TransMorph(ndim=ndim, embed=tm_embed, depths=tuple(tm_depths), heads=tuple(tm_heads), window=tm_window,
                      remat=remat)
  else:
    raise ValueError(f"unknown registration architecture {arch!r}; expected one of {ARCHITECTURES}")
  return RegistrationNet(unet=unet, transform=transform, int_steps=int_steps, svf_half_res=svf_half_res)


def count_params(params) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(params))
