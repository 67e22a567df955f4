"""Numerics: reference gradients, metrics, the NumPy optimiser, the step schedule,
training control.  Imports only `harness.core`."""
