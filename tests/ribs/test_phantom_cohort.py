"""The phantom cohort: drawn shapes follow the configured class distributions, the Bayes bound is right, and the
measured features recover what was drawn."""

import numpy as np
from scipy.stats import norm

from jaxmed.ribs import measure_ribs
from jaxmed.synth import ribs as synth


def test_drawn_lowest_ribs_match_the_configured_distributions():
  rng = np.random.default_rng(0)
  n = 4000
  for stump, cls in ((True, "stump"), (False, "full")):
    draws = [synth.draw_rib(rng, stump) for _ in range(n)]
    for name, by_class in synth.RIB_DISTRIBUTIONS.items():
      mean, sd = by_class[cls]
      x = np.array([d[name] for d in draws])
      assert abs(x.mean() - mean) < 3 * sd / np.sqrt(n) + 1.1, (name, cls)   # + the clipping's small shift
      assert abs(x.std() - sd) < 0.1 * sd, (name, cls)
    lo, hi = synth.LOWEST_RIB_LENGTH_MM[cls]
    lengths = np.array([d["length"] for d in draws])
    assert lengths.min() >= lo and lengths.max() <= hi
    # thickness is the volume of the first 10 mm of a tube of that radius
    assert np.allclose([np.pi * d["radius"] ** 2 * 10 for d in draws], [d["thickness_mm3"] for d in draws])


def test_bayes_bound_matches_the_closed_form_auroc_and_grows_with_information():
  (ms, s), (mf, _) = synth.RIB_DISTRIBUTIONS["beta0_deg"]["stump"], synth.RIB_DISTRIBUTIONS["beta0_deg"]["full"]
  one = synth.bayes_f1(names=("beta0_deg",), num_samples=200_000)
  assert abs(one["auroc"] - norm.cdf(abs(ms - mf) / (s * np.sqrt(2)))) < 0.005   # equal SDs: Phi(d / (s sqrt 2))
  two = synth.bayes_f1(names=("beta0_deg", "thickness_mm3"), num_samples=200_000)
  everything = synth.bayes_f1(num_samples=200_000)
  assert one["f1"] < two["f1"] < everything["f1"] < 1.0
  assert everything["f1"] >= everything["f1_at_half"] - 1e-9


def test_measured_articulation_and_thickness_follow_the_drawn_values():
  """On upright, straight phantoms (no anatomy noise) at 1 mm: articulation depth within 3.5 mm and the
  first-centimetre volume within 30% of the drawn values, and both rank the ribs as drawn."""
  from scipy.stats import spearmanr
  drawn, measured = [], []
  for seed in range(4):
    ph = synth.thoracolumbar_phantom(1.0, seed=seed, with_ct=False, anatomy_noise=False, fov_jitter_mm=0.0)
    recs = measure_ribs(ph["rib_instance"], ph["rib_semantic"], ph["vertebra_instance"], ph["subregions"],
                        ph["spacing"], vertebrae=(synth.RIB_VERTEBRAE[-1],))
    truth = {r["left"]: r for r in ph["ribs"] if r["vertebra"] == synth.RIB_VERTEBRAE[-1]}
    for rec in recs:
      p, f = truth[rec["left"]]["params"], rec["features"]
      depth = -f["official/corpus/start_to_com_post"]
      vol = f["official/thickness/volume_first_cm_mm3"]
      assert abs(depth - p["articulation_mm"]) < 3.5
      assert abs(vol - p["thickness_mm3"]) < 0.3 * p["thickness_mm3"]
      drawn.append([p["articulation_mm"], p["thickness_mm3"]])
      measured.append([depth, vol])
  drawn, measured = np.array(drawn), np.array(measured)
  for k in range(2):
    assert spearmanr(drawn[:, k], measured[:, k]).statistic > 0.8
