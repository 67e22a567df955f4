"""Science shared by the tasks: physics and trajectory data, the Hamiltonian MLP,
collocation, symplectic integrators, symbolic regression, IDX reading."""
