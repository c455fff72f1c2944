"""python -m experiments.ssfl_recon --config=experiments/ssfl_recon/config.py:demo --workdir=runs/ssfl_recon"""

import os

from experiments.ssfl_recon import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
