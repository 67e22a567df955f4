"""Science shared by the tasks: physics and trajectory data, the Hamiltonian MLP,
collocation, symplectic integrators, symbolic regression, IDX reading; for the hybrid
Lotka-Volterra task, its models, frozen-parameter variants, the learnt initial condition,
phased training, the symbolic read-out and the predation-term metrics."""
