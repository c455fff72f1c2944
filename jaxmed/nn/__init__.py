"""Shared network layers used by more than one method."""

from jaxmed.nn.cnn import SmallCNN
from jaxmed.nn.integrated_gradients import ig_quadrature, integrated_gradients
from jaxmed.nn.losses import dice_ce_loss, soft_dice_loss
from jaxmed.nn.sliding_window import gaussian_importance, sliding_window_inference, window_starts
from jaxmed.nn.unet3d import ConvBlock3D, UNet3D

__all__ = ["ConvBlock3D", "SmallCNN", "UNet3D", "ig_quadrature", "integrated_gradients", "dice_ce_loss", "soft_dice_loss", "gaussian_importance", "sliding_window_inference", "window_starts"]
