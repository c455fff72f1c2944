"""jaxmed: ten medical-AI methods as pure, composable, jit-compiled JAX functions.

Layers (imports point down only):
  method packages (mri, registration, llm, rl, laplace, ...)
  nn, io, synth
  core
See DESIGN.md in the shared folder and README.md.
"""

__version__ = "0.1.0"
