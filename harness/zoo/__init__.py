"""The model zoo: concrete layers and networks built on the model specs of
`harness.core.models`, with their framework dispatch (NumPy, PyTorch, JAX) — the
convolutional layers of torchdiffeq's `examples/odenet_mnist.py` (003) and the ODE-Net and
ResNet made of them.  Above `harness.core`, which stays framework-free."""
