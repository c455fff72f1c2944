"""Cine MRI reconstruction (SSFL-Recon, Xu, Kuestner et al., IEEE TMI 2025) and its operators.

Centred orthonormal FFTs, multi-coil multi-frame SENSE with CG-SENSE, ESPIRiT
coil maps from the time-averaged k-space centre, VISTA / SSDU / fastMRI
masks; complex 2D+t layers, the complex UNet, the unrolled reconstruction
network with optional feature injection, the feature extractor's head; the
parallel self-supervised, SSDU, InfoNCE and VICReg losses; PSNR/SSIM/NMSE.
"""

from jaxmed.mri.espirit import espirit_maps, time_average
from jaxmed.mri.fft import fft2c, ifft2c
from jaxmed.mri.masks import (expand_line_mask, fastmri_equispaced_mask, fastmri_random_mask, ssdu_split,
                              vista_mask)
from jaxmed.mri.layers import (ComplexConv, ComplexConvFrames, ComplexConvTime, ComplexUpsample, ModReLU,
                               complex_instance_norm, magnitude_max_pool)
from jaxmed.mri.losses import info_nce, parallel_loss, ssdu_loss, vicreg
from jaxmed.mri.metrics import nmse, psnr, psnr_frames, ssim, ssim_frames
from jaxmed.mri.networks import (ComplexUNet, ProjectionHead, ProjectionHeads, UnrolledRecon, nonneg_scalars,
                                 unet_padding)
from jaxmed.mri.sense import cg_sense, data_consistency, expand_mask, normalize_maps, sense_adjoint, sense_forward

__all__ = ["ComplexConv", "ComplexConvFrames", "ComplexConvTime", "ComplexUpsample", "ComplexUNet", "ModReLU",
           "ProjectionHead", "ProjectionHeads", "UnrolledRecon", "nonneg_scalars", "unet_padding", "complex_instance_norm", "info_nce", "magnitude_max_pool", "nmse", "parallel_loss", "psnr", "psnr_frames", "ssim_frames",
           "ssdu_loss", "ssim", "vicreg", "cg_sense", "data_consistency", "espirit_maps", "expand_line_mask", "expand_mask",
           "fastmri_equispaced_mask", "fastmri_random_mask", "fft2c", "ifft2c", "normalize_maps", "sense_adjoint",
           "sense_forward", "ssdu_split", "time_average", "vista_mask"]
