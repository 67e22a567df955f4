"""Training protocols as data (#25, #27): every task declares the phases it trains by, each
with its budget and why, in one `TrainingProtocol` with its defaults; a protocol the harness
cannot run, or a task still declaring the names it replaced, is refused when it registers."""

from __future__ import annotations

import pytest

from harness.core import registry
from harness.core.errors import UsageError
from harness.core.protocols import AbstractTask
from harness.core.training_protocol import (
    DRIVER_KINDS,
    LEGACY_TRAINING_NAMES,
    TRAIN_BASE,
    Phase,
    TrainingProtocol,
    check_protocol,
    default_phases,
)
from harness.testing import check_task

registry.discover()

OWN = Phase("minibatch-sgd", "iters", "the schedule's end", "003 §3.2")


@pytest.mark.parametrize("name", sorted(registry.TASKS))
def test_every_task_declares_a_protocol_it_can_run(name: str) -> None:
    cls = registry.TASKS[name]
    phases = cls(**cls.checks.options).phases()
    check_protocol(name, phases, own_fit=cls.fit is not AbstractTask.fit)
    assert all(p.why.strip() and p.budget in cls.protocol.settings() for p in phases)
    assert phases[-1].kind == "lbfgs", "every protocol ends with the polish (`--set polish=M`)"


def test_tasks_that_train_otherwise_name_their_phase() -> None:
    """MNIST by mini-batch SGD, the HNN by collocation (or the driver's Adam when told to
    train on trajectories), the hybrid by its frozen-parameter phases; the rest by Adam."""
    first = {name: cls().phases()[0].kind for name, cls in registry.TASKS.items() if name != "odenet_mnist"}
    assert first["hybrid_lotka_volterra"] == "hybrid-phases"
    assert first["hnn_double_pendulum"] == "collocation"
    assert registry.TASKS["odenet_mnist"].protocol.phases[0].kind == "minibatch-sgd"
    assert registry.TASKS["hnn_double_pendulum"](training="trajectory").phases()[0].kind == "adam"
    assert first["double_pendulum"] == first["lotka_volterra"] == "adam"


def test_a_protocol_that_cannot_run_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="why"):
        Phase("adam", "iters", "target", " ")
    with pytest.raises(ValueError, match="starts with a fitting phase"):
        check_protocol("t", default_phases()[1:], own_fit=False)
    with pytest.raises(ValueError, match="only an 'lbfgs' polish"):
        check_protocol("t", (*default_phases(), OWN), own_fit=True)

    class NoFit(AbstractTask):  # an own phase with no `fit` to run it
        name = "no_fit_protocol"
        source = "test"
        protocol = TrainingProtocol(phases=default_phases(OWN))

    with pytest.raises(UsageError, match="'minibatch-sgd' is the task's own and needs its `fit`"):
        registry.register_task(NoFit)
    assert "no_fit_protocol" not in registry.TASKS
    assert set(DRIVER_KINDS) == {"adam", "lbfgs"}


def test_the_protocol_refuses_unknown_settings_and_missing_phases() -> None:
    assert TrainingProtocol().settings() == {**TRAIN_BASE, "iters": 100, "lr": 1e-2}
    assert TrainingProtocol(defaults={"iters": 7}).settings()["iters"] == 7
    with pytest.raises(ValueError, match=r"unknown keys \['epochs'\]; valid: \['budget'"):
        TrainingProtocol(defaults={"epochs": 3})
    with pytest.raises(ValueError, match="needs its phases"):
        TrainingProtocol(phases=())


@pytest.mark.parametrize("old", [*LEGACY_TRAINING_NAMES, "protocol"])
def test_a_task_declaring_a_replaced_training_name_is_one_line(old: str) -> None:
    """#27: the five training class variables became one `TrainingProtocol`; a task (or a
    plugin written against the old interface) that still sets one is told where it went, at
    registration and by `check_task`."""
    legacy = {
        "train_defaults": {"iters": 5},
        "converged_at_target": "a floor",
        "needs_batches": True,
        "fit_metrics": ("x",),
        "protocol": default_phases(),
    }
    base = registry.TASKS["linear"]
    old_style = type("OldStyle", (base,), {"name": f"old_style_{old}", "__doc__": "test", old: legacy[old]})
    new = LEGACY_TRAINING_NAMES.get(old, "phases")
    with pytest.raises(UsageError) as info:
        registry.register_task(old_style)
    message = str(info.value)
    assert "\n" not in message and old in message and "TrainingProtocol(" in message and new in message
    assert f"old_style_{old}" not in registry.TASKS
    with pytest.raises(AssertionError, match=f"{old} is now"):
        check_task(old_style)
