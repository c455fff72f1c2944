"""Laplace approximations and Laplace Sample Information (LSI; Kaiser et al., ICLR 2025).

* ``curvature``: GGN-vector products (jvp/vjp), the exact diagonal GGN, the
  full GGN, and the closed-form GGN of a linear probe;
* ``posterior``: ``laplace(...)`` -> diag / full / KFAC posteriors (mean,
  precision, log-det, samples) and ``posterior_kl``;
* ``kl``, ``kfac``: Gaussian KLs with their pieces; KFAC with the prior kept
  and an exact log-determinant (the official LSI code drops both);
* ``kfac_layers``: KFAC of every Dense layer of a network (per-layer factors,
  laplace-torch's convention and parity), its KL and log marginal likelihood;
* ``closed_form``: all-sample LSI of a linear probe (or a network's last layer) without retraining;
* ``lsi``: leave-one-out LSI through per-sample weight masks, all
  retrainings in one compiled map (exact, warm-started, influence);
* ``probes``: linear / MLP probes and their pure ``fit_fn`` (Adam, or exact
  damped Newton for the linear probe);
* ``baselines``: loss, EL2N, GraNd, data maps, self-influence.

The experiment is ``experiments/lsi``; the story is ``notebooks/lsi.ipynb``.
"""

from jaxmed.laplace.closed_form import lsi_closed_form
from jaxmed.laplace.baselines import data_map, el2n, grand, per_sample_gradients, per_sample_loss, self_influence
from jaxmed.laplace.curvature import (LIKELIHOODS, ggn_diagonal, ggn_matrix, ggn_vector_product, linear_probe_ggn,
                                      output_gradient,
                                      output_hessian, per_sample_jacobians)
from jaxmed.laplace.kfac import KFACPosterior, kfac_probe_posterior, kl_kfac
from jaxmed.laplace.kfac_layers import (KFACNetworkPosterior, kfac_log_marginal_likelihood, kfac_network_posterior,
                                       kl_kfac_network, layer_factors)
from jaxmed.laplace.kl import kl_diagonal, kl_full
from jaxmed.laplace.lsi import METHODS, laplace_sample_information
from jaxmed.laplace.probes import (LinearProbe, MLPProbe, linear_probe_lbfgs_fit_fn, linear_probe_newton_fit_fn,
                                   probe_fit_fn, probe_objective)
from jaxmed.laplace.posterior import STRUCTURES, LaplacePosterior, laplace, posterior_kl

__all__ = ["KFACPosterior", "LIKELIHOODS", "METHODS", "LaplacePosterior", "kfac_probe_posterior", "kl_kfac",
           "STRUCTURES", "ggn_diagonal", "ggn_matrix", "ggn_vector_product", "kl_diagonal", "kl_full", "laplace",
           "laplace_sample_information", "output_gradient", "output_hessian", "per_sample_jacobians",
           "posterior_kl", "data_map", "el2n", "grand", "per_sample_gradients", "per_sample_loss",
           "self_influence", "LinearProbe", "MLPProbe", "probe_fit_fn", "probe_objective", "linear_probe_ggn",
           "linear_probe_newton_fit_fn", "linear_probe_lbfgs_fit_fn", "lsi_closed_form", "KFACNetworkPosterior",
           "kfac_log_marginal_likelihood", "kfac_network_posterior", "kl_kfac_network", "layer_factors"]
