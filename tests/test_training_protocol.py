"""Training protocols as data (#25): every task declares the phases it trains by, each with
its budget and why; a protocol the harness cannot run is refused when the task registers."""

from __future__ import annotations

import pytest

from harness.core import registry
from harness.core.errors import UsageError
from harness.core.protocols import AbstractTask
from harness.core.training_protocol import DRIVER_KINDS, Phase, check_protocol, default_protocol

registry.discover()

OWN = Phase("minibatch-sgd", "iters", "the schedule's end", "003 §3.2")


@pytest.mark.parametrize("name", sorted(registry.TASKS))
def test_every_task_declares_a_protocol_it_can_run(name: str) -> None:
    cls = registry.TASKS[name]
    phases = cls(**cls.checks.options).phases()
    check_protocol(name, phases, own_fit=cls.fit is not AbstractTask.fit)
    assert all(p.why.strip() and p.budget in cls.training_defaults() for p in phases)
    assert phases[-1].kind == "lbfgs", "every protocol ends with the polish (`--set polish=M`)"


def test_tasks_that_train_otherwise_name_their_phase() -> None:
    """MNIST by mini-batch SGD, the HNN by collocation (or the driver's Adam when told to
    train on trajectories), the hybrid by its frozen-parameter phases; the rest by Adam."""
    first = {name: cls().phases()[0].kind for name, cls in registry.TASKS.items() if name != "odenet_mnist"}
    assert first["hybrid_lotka_volterra"] == "hybrid-phases"
    assert first["hnn_double_pendulum"] == "collocation"
    assert registry.TASKS["odenet_mnist"].protocol[0].kind == "minibatch-sgd"
    assert registry.TASKS["hnn_double_pendulum"](training="trajectory").phases()[0].kind == "adam"
    assert first["double_pendulum"] == first["lotka_volterra"] == "adam"


def test_a_protocol_that_cannot_run_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="why"):
        Phase("adam", "iters", "target", " ")
    with pytest.raises(ValueError, match="starts with a fitting phase"):
        check_protocol("t", default_protocol()[1:], own_fit=False)
    with pytest.raises(ValueError, match="only an 'lbfgs' polish"):
        check_protocol("t", (*default_protocol(), OWN), own_fit=True)

    class NoFit(AbstractTask):  # an own phase with no `fit` to run it
        name = "no_fit_protocol"
        source = "test"
        protocol = default_protocol(OWN)

    with pytest.raises(UsageError, match="'minibatch-sgd' is the task's own and needs its `fit`"):
        registry.register_task(NoFit)
    assert "no_fit_protocol" not in registry.TASKS
    assert set(DRIVER_KINDS) == {"adam", "lbfgs"}
