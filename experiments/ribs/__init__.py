"""Thoracolumbar stump ribs: segmentation, assignment, rib length, morphology, classifier (Moeller et al. 2025)."""

from jaxmed.core import result_float

TITLE = "Stump ribs: rib segmentation, iterative rib length, morphology, stump classifier (Moeller et al. 2025)"
HEADLINE = ("dice/rib", "surface_dice/rib", "length/mae_mm", "length/success_rate_paper_criterion",
            "f1/stump/full_view", "f1/stump/partial_view", "bayes_f1/stump/partial_view")
VIEWS = ("full_view", "partial_view")
# (feature, the paper's stump / full value where it reports one)
SHOWN_MEANS = (("official/corpus/start_to_com_post", "-19.2 / -13.8"),
               ("official/thickness/volume_first_cm_mm3", "260.6 / 563.6"),
               ("first_cm/inf", "stumps more downward"), ("first_cm/lat", "stumps more sideways"),
               ("length_mm", "<= 38 / > 38"))


def results_table(results: dict) -> str:
  """Markdown: segmentation and length, then the classifier cohort against its bounds (the tour writes it)."""
  def g(key, default=float("nan")):
    return result_float(results.get(key, default))

  def f1_cell(key):
    ci = results.get(key + "_ci")
    return f"{g(key):.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
  lines = [f"Rib Dice {g('dice/rib'):.3f} (worst CT {g('dice/rib/min'):.3f}), surface Dice at 1.5 mm "
           f"{g('surface_dice/rib'):.3f}; {g('assign/missed_ribs', 0):.0f} true ribs not found, "
           f"{g('assign/false_positive_ribs', 0):.0f} assigned ribs where the phantom has none.", "",
           "| rib length | ribs | MAE (mm) | max error (mm) | relative error | paper criterion |",
           "|---|---|---|---|---|---|"]
  for prefix, what in (("length/", "segmented held-out CTs (all ribs)"), ("length/cohort_masks/",
                                                                          "cohort test phantoms, label masks"),
                       ("length/arcs/", "analytic arcs")):
    lines.append(f"| {what} | {g(prefix + 'num_ribs', 0):.0f} | {g(prefix + 'mae_mm'):.2f} | "
                 f"{g(prefix + 'max_error_mm'):.2f} | {g(prefix + 'relative_error'):.3f} | "
                 f"{g(prefix + 'success_rate_paper_criterion'):.3f} |")
  lines += ["", f"Stump classifier cohort: {g('num_ribs/cohort/full_view', 0):.0f} test ribs per view "
            f"({g('num_stumps/cohort/full_view', 0):.0f} stumps); F1 with 95% cluster-bootstrap CIs over phantoms.", "",
            "| row | features | " + " | ".join(f"F1 {v}" for v in VIEWS) + " |", "|---|---|---|---|",
            "| Bayes-optimal bound (generating variables) | - | " + " | ".join(
                f"{g(f'bayes_f1/stump/{v}'):.3f}" for v in VIEWS) + " |",
            "| oracle: logistic on the drawn variables | - | " + " | ".join(
                f1_cell(f"f1/stump/{v}/oracle_variables") for v in VIEWS) + " |"]
  for kind in ("logistic", "gbm", "mlp"):
    for features, suffix in (("official", ""), ("ours", "/ours")):
      if f"f1/stump/full_view/{kind}{suffix}" in results:
        lines.append(f"| {kind} | {features} | " + " | ".join(
            f1_cell(f"f1/stump/{v}/{kind}{suffix}") for v in VIEWS) + " |")
  lines += ["| length rule (<= 38 mm) | length | " + " | ".join(
      f"{g(f'f1/stump/{v}/length_rule'):.3f}" for v in VIEWS) + " |",
            "| floor: every rib a stump | - | " + " | ".join(f1_cell(f"f1/stump/{v}/all_stump") for v in VIEWS) + " |",
            "", f"On the segmented held-out CTs ({g('num_ribs/segmented/full_view', 0):.0f} / "
            f"{g('num_ribs/segmented/partial_view', 0):.0f} lowest ribs): logistic F1 "
            f"{g('f1/stump/segmented/full_view'):.3f} / {g('f1/stump/segmented/partial_view'):.3f}, length rule "
            f"{g('f1/stump/full_view/segmented/length_rule'):.3f} / "
            f"{g('f1/stump/partial_view/segmented/length_rule'):.3f} (full / partial view).", "",
            "| feature (cohort training ribs, vertebra frame) | stump | full | paper (stump / full) |",
            "|---|---|---|---|"]
  for name, paper in SHOWN_MEANS:
    lines.append(f"| {name} | {g(f'features/stump/{name}'):.2f} | {g(f'features/full/{name}'):.2f} | {paper} |")
  return "\n".join(lines) + "\n"
