"""Forward solve (no gradient) of every back-end on every task: the back-end's `predict`
at the initial parameters over the observation times, as the task metrics call it."""

from __future__ import annotations

from benchmarks import common


class ForwardSolve(common.RegistryBenchmark):
    """Steady state: one untimed `predict` in `setup` absorbs compilation."""

    def setup(self, task: str, impl: str) -> None:
        self.impl, self.params = common.build(task, impl)
        self.t, self.y0 = self.impl.data.t, self.impl.data.y0
        self.impl.predict(self.params, self.t, self.y0)

    def time_forward_solve(self, task: str, impl: str) -> None:
        """Seconds per `impl.predict(params, data.t, data.y0)` (states back in NumPy)."""
        self.impl.predict(self.params, self.t, self.y0)
