"""Neural ODE benchmark and reproducibility harness.

Light on purpose: importing `harness` imports no numerical framework, so that thread
counts can be set before NumPy, PyTorch or JAX load (see `harness.execution.environment`).
"""

__version__ = "0.1.0"
