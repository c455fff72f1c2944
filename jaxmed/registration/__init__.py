"""Deformable registration and ARC curves (alignment-regularity characteristic).

Spatial transformer, SVF integration, losses, Jacobian-based regularity
metrics, VoxelMorph/LKU-Net style networks, a HyperMorph hypernetwork and
the ARC evaluation. Imports ``jaxmed.core``-free pieces only; the synthetic
atlas data live in :mod:`jaxmed.synth.atlas` and the Learn2Reg NIfTI reader
in :mod:`jaxmed.io.nifti`.
"""

from jaxmed.registration.arc import (arc_auc, arc_common_range, arc_curve, arc_points, compiled_peak_bytes,
                                     lambda_batch_for_budget, plot_arc)
from jaxmed.registration.hypernet import (HyperMorph, HyperNetwork, apply_in_dtype, head_kernel_labels, loss_weights,
                                          make_hypermorph, sample_lambdas)
from jaxmed.registration.losses import dice_loss, gradient_loss, local_ncc, mse, ncc_loss
from jaxmed.registration.metrics import (dice_per_label, displacement_gradient, folding_percent, hd95,
                                         jacobian_determinant, keypoint_tre, ndv_percent, sdlogj_l2r, sdlogj_masked)
from jaxmed.registration.networks import (ARCHITECTURES, ConvAct, LKBlock, RegistrationNet, RegUNet, count_params,
                                          registration_net)
from jaxmed.registration.surface import hd95_l2r, robust_hausdorff, surfel_area_table
from jaxmed.registration.warp import compose, identity_grid, integrate_svf, warp, warp_labels

__all__ = [
    "ARCHITECTURES", "ConvAct", "HyperMorph", "HyperNetwork", "LKBlock", "RegUNet", "RegistrationNet",
    "apply_in_dtype", "arc_auc", "arc_common_range", "arc_curve", "arc_points", "compiled_peak_bytes", "compose",
    "count_params", "dice_loss", "dice_per_label", "displacement_gradient", "folding_percent", "gradient_loss",
    "hd95", "hd95_l2r", "head_kernel_labels", "identity_grid", "integrate_svf", "jacobian_determinant",
    "keypoint_tre", "lambda_batch_for_budget", "local_ncc", "loss_weights", "make_hypermorph", "mse", "ncc_loss",
    "ndv_percent", "plot_arc", "registration_net", "robust_hausdorff", "sample_lambdas", "sdlogj_l2r",
    "sdlogj_masked", "surfel_area_table", "warp", "warp_labels",
]
