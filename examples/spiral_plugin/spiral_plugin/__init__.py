"""Example plugin of the neural ODE harness: the spiral of torchdiffeq's `ode_demo`.

The task is in `spiral_plugin.task`; the harness loads it through the entry point
`spiral = "spiral_plugin.task"` of the group `neuralode_harness.tasks` (see pyproject.toml).
"""
