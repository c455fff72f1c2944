"""Laplace approximations and Laplace Sample Information (LSI; Kaiser et al., ICLR 2025).

Work in progress: GGN curvature (matrix-free products, exact diagonal, full),
Gaussian KL divergences with their pieces, diag/full Laplace posteriors, a
KFAC posterior for linear probes with an exact KL, and
leave-one-out LSI via vmapped weight masks (exact, warm-started, influence)
for the diag, full and KFAC structures, and the baselines (loss, EL2N, GraNd,
data maps, self-influence), and linear/MLP probes with a pure full-batch
``fit_fn``. The experiment (digits, synthetic set, pruning transfer), its
notebook and benchmark follow.
"""

from jaxmed.laplace.baselines import data_map, el2n, grand, per_sample_gradients, per_sample_loss, self_influence
from jaxmed.laplace.curvature import (LIKELIHOODS, ggn_diagonal, ggn_matrix, ggn_vector_product, linear_probe_ggn,
                                      output_gradient,
                                      output_hessian, per_sample_jacobians)
from jaxmed.laplace.kfac import KFACPosterior, kfac_probe_posterior, kl_kfac
from jaxmed.laplace.kl import kl_diagonal, kl_full
from jaxmed.laplace.lsi import METHODS, laplace_sample_information
from jaxmed.laplace.probes import LinearProbe, MLPProbe, linear_probe_newton_fit_fn, probe_fit_fn, probe_objective
from jaxmed.laplace.posterior import STRUCTURES, LaplacePosterior, laplace, posterior_kl

__all__ = ["KFACPosterior", "LIKELIHOODS", "METHODS", "LaplacePosterior", "kfac_probe_posterior", "kl_kfac", "STRUCTURES", "ggn_diagonal", "ggn_matrix", "ggn_vector_product",
           "kl_diagonal", "kl_full", "laplace", "laplace_sample_information", "output_gradient", "output_hessian",
           "per_sample_jacobians", "posterior_kl", "data_map", "el2n", "grand", "per_sample_gradients",
           "per_sample_loss", "self_influence", "LinearProbe", "MLPProbe", "probe_fit_fn", "probe_objective",
           "linear_probe_ggn", "linear_probe_newton_fit_fn"]
