"""Laplace Sample Information on frozen-feature probes: mislabels, typicality, difficulty, pruning transfer."""

TITLE = "Laplace Sample Information (Kaiser et al., ICLR 2025)"
HEADLINE = ("auroc/mislabel/lsi", "spearman/diag_full", "acc/prune/top")
