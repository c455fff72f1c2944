"""Slice-to-volume reconstruction with implicit neural representations (MetaSVR, Dannecker et al. 2025).

Geometry and rotations, the Monte-Carlo slice PSF with its sample ramp, SIREN
and pure-JAX hash-grid volume INRs, free or INR slice motion, the imaging
model with per-slice scale and learned variance (outlier weights), optional
pixel variance and bias field, per-group optimisers, the fitting loop,
volume sampling and export, and Reptile meta-learning of the initialisation.
"""

from jaxmed.svr.geometry import (axis_angle_matrix, compose, euler_zxz_matrix, invert, matrix_axis_angle, rigid_matrix,
                                 rotation_error_deg, rotation_matrix)
from jaxmed.svr.export import reconstruct_volume, slice_weights, target_grid, write_motion_table, write_outputs
from jaxmed.svr.inr import HashGrid, Siren, VoxelGrid, volume_inr
from jaxmed.svr.metrics import (informative_slices, masked_psnr_ssim, motion_errors, outlier_auroc,
                                registered_psnr_ssim, slice_sigma_in_volume_units)
from jaxmed.svr.motion import FreeMotion, MotionINR, SirenMotion, drift_penalty, motion_model, smoothness_penalty
from jaxmed.svr.preprocess import n4_bias_correction, normalise_intensity, prealign_stacks
from jaxmed.svr.psf import psf_offsets, psf_ramp, psf_sigmas
from jaxmed.svr.reconstruct import (GROUPS, SVRModel, device_slices, fit, level_progress, make_optimizer,
                                    outlier_drift_weights, sample_volume)
from jaxmed.svr.reptile import load_meta_init, meta_groups, meta_learn, reptile_update, save_meta_init
from jaxmed.svr.slices import acquire, normalise, pad_pixels, pixel_counts, pixel_points, prepare

__all__ = ["acquire", "axis_angle_matrix", "compose", "device_slices", "drift_penalty", "euler_zxz_matrix", "fit",
           "FreeMotion", "GROUPS", "HashGrid", "informative_slices", "invert", "level_progress", "load_meta_init",
           "make_optimizer", "masked_psnr_ssim", "matrix_axis_angle", "meta_groups", "meta_learn", "motion_errors",
           "motion_model", "MotionINR", "n4_bias_correction", "normalise", "normalise_intensity", "outlier_auroc",
           "outlier_drift_weights", "pad_pixels", "pixel_counts", "pixel_points", "prealign_stacks", "prepare",
           "psf_offsets", "psf_ramp", "psf_sigmas", "reconstruct_volume", "registered_psnr_ssim", "reptile_update",
           "rigid_matrix", "rotation_error_deg", "rotation_matrix", "sample_volume", "save_meta_init", "Siren",
           "SirenMotion", "slice_sigma_in_volume_units", "slice_weights", "smoothness_penalty", "SVRModel",
           "target_grid", "volume_inr", "VoxelGrid", "write_motion_table", "write_outputs"]
