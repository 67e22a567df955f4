"""Hybrid Lotka-Volterra (004): a mechanistic model with a small neural correction,
trained in two phases, then read out by sparse symbolic regression and retrained.

The science lives in `tasks._common`: the hybrid and formula models (`hybrid_lv`), frozen
parameters and phase tasks (`variants`), the learnt initial condition (`learnt_initial`),
phased training over growing windows (`phased`), the symbolic read-out (`recovery`) and
the predation-term metrics (`predation`); this module holds the task: its data, options,
claims, metrics and the orchestration of `fit`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import (
    MLP,
    AbstractBackend,
    CheckSettings,
    Claim,
    Dataset,
    Parametric,
    Params,
    Phase,
    Predictor,
    TrainCallback,
    TrainingProtocol,
    TrainResult,
    TrajectoryTask,
    curriculum_stages,
    default_phases,
    flag,
    flatten,
    integer,
    non_negative,
    one_of,
    positive,
    probability,
    register_task,
    solve_truth,
    text,
    trajectory_dataset,
    trajectory_metrics,
)
from tasks._common.hybrid_lv import MECHANISTIC, TRUTH, Y0, formula_model, hybrid_model, true_field
from tasks._common.learnt_initial import Y0_OFFSET, clock_augmented, lead_in_predictor, learnt_initial_model
from tasks._common.phased import PhasedTraining
from tasks._common.predation import predation_metrics
from tasks._common.recovery import (
    cat_power_library,
    formula_start,
    found_info,
    regress_correction,
    retrained_info,
)
from tasks._common.symbolic import Monomial, SparseFit
from tasks._common.variants import VariantTask, frozen_model

__all__ = ["HybridLotkaVolterra"]


class _Variant(VariantTask):
    """A task that differs from its parent only in its model (a phase of `fit`)."""

    name = "hybrid_lotka_volterra (phase)"
    source = "004"


#: the truth's predation term, 2.1 rabbit cat^0.95, for `predation_metrics`
_PREDATION = {"delta": TRUTH["delta"], "cat_power": TRUTH["cat_power"]}


@register_task
class HybridLotkaVolterra(TrajectoryTask):
    """004 (slides "A primer on neural ODEs"): "Neural ODEs: version 2", a mechanistic
    Lotka-Volterra model whose predation term carries a neural correction,
    d rabbit/dt = alpha rabbit - beta rabbit cat,
    d cat/dt = -gamma cat + delta rabbit (cat + NN(rabbit, cat)),
    rabbit(0) = 2, cat(0) = 1, alpha = beta = gamma = delta = 1 initially, NN 4 wide and
    1 hidden layer deep ("Summary of part 1"), its correction started near zero.

    Data (SPEC, "Choices the documents leave open"): the slides' retrained model is the
    ground truth, d rabbit/dt = 0.9 rabbit - 1.1 rabbit cat,
    d cat/dt = -1.2 cat + 2.1 rabbit cat^0.95, which the mechanistic part alone cannot
    represent; the NN should learn about (2.1 / delta) cat^0.95 - cat.

    Training (`fit`, "Tricks-of-the-trade for nODEs" and "Summary of part 1"): phase 1
    trains alpha, beta, gamma, delta with the NN frozen at its (near-zero) initial
    weights; phase 2 trains the NN with those frozen; then the learnt correction is read
    out by sparse symbolic regression ("Symbolic regression") and the found formula is
    retrained differentiably (phase 3, every parameter of the formula).  Continuum learning
    (`curriculum_step`: train on the first 5, 10, 15, ... time points) is an option for
    phases 1 and 2.  MSE loss, Adam.

    Learnt initial condition ("Conditions + Learnt Initialisations"), option `learn_y0`:
    the state gains a clock and a lead-in of length `y0_lead` before t = 0 that moves the
    observed initial state by a trained offset (`learnt_initial_model`), trained in every
    phase; meaningful with noisy observations (`noise`, Gaussian standard deviation, 0 by
    default).  Backward extrapolation then runs from the learnt state at t = 0.

    Choices the slides leave open (options):

    - data: window [0, `t1`] = [0, 10] (about 1.5 periods of 6.8), `n_obs` = 21 uniform
      observation times (t = 0 included; every 0.5), `extrap` = 5 forward and backward;
      RK4 `dt` = 0.05 (10 steps per interval: gradient error ~5e-7, 8e-6 at `dt` = 0.1);
    - NN: tanh; hidden layer at PyTorch's default initialisation, output layer times
      `init_scale` = 1e-3 ("start your learnt correction near zero");
    - training: Adam, 300 iterations at lr 0.05 by default, split `frac_physics` = 0.25
      (phase 1), the rest (phase 2) and `frac_formula` = 0.6 (phase 3, at lr times
      `formula_lr_ratio` = 2); continuum learning, if on, splits phases 1 and 2 evenly
      over the stages;
    - regression: `n_samples` = 10,000 states along the trained hybrid model's trajectory
      over the window ("~10k samples", "points from typical ODE trajectories"); the target
      is rabbit (cat + NN) (`target` = "response", the whole predation response, whose
      sparse fit gives NN ~ k cat^p - cat directly) or rabbit NN (`target` = "nn", the
      slides' y = NN), regressed on rabbit times each library term (weighting by rabbit:
      the NN only acts through delta rabbit NN, so it is not identifiable where rabbit is
      near 0); library (`library` = "cat") 1, cat^2 and cat^p for p in `cat_powers` = 0.5,
      0.55, ..., 1.5, or (`library` = "full") also rabbit, rabbit^2, rabbit cat; method
      `regression` = "subset" (smallest subset of at most `max_terms` = 2 terms within
      relative residual `tol` = 0.02) or "stlsq" (SINDy's thresholded least squares,
      threshold `tol`; unstable on nearly collinear powers of cat, measured);
    - formula (phase 3): d cat/dt = -gamma cat + rabbit sum_k w_k term_k, the found terms
      (with `target` = "nn", also the mechanistic cat term), w_k = delta times the found
      coefficient, and the powers of cat of the found terms trainable too.

    Measured (defaults, the same on all four back-ends): phase 1 ends at alpha, beta,
    gamma, delta = (1.10, 1.35, 1.01, 1.86) (the slides: 1.1, 1.3, 0.98, 1.6), the
    regression finds NN ~ 1.07 cat^0.95 - cat, and the retrained formula is
    d cat/dt = -1.187 cat + 2.090 rabbit cat^0.9501 with alpha, beta, gamma within 1.2%
    of the truth.  Over seeds 0-3 the found term is cat^0.95 every time and the parameter
    errors range from 0.1% to 7% (phase 3 is still converging after 180 iterations);
    `--iters 500` brings them to 1e-4.

    Metrics: trajectory errors of the hybrid model, its mechanistic parameters and their
    errors against the truth (delta is only identifiable together with the NN:
    `interaction_rel_error` compares delta rabbit (cat + NN) with 2.1 rabbit cat^0.95 along
    the true trajectory; `effective_delta`, `effective_cat_power` are the closest power law
    d cat^q), and from `fit` (`TrainResult.info`): the found terms and coefficients
    (`found_*`), the retrained formula (`formula`, its coefficients and powers) with its
    parameter, interaction and trajectory errors (`formula_*`), the phases' lengths.  The
    runner evaluates the hybrid model (phase 2's parameters); the loss history runs over
    all three phases (phase 3: the formula's loss).
    """

    name = "hybrid_lotka_volterra"
    #: `harness.testing.check_task`: half the window (every 0.5 as by default), the same checks
    checks = CheckSettings(options={"t1": 5.0, "n_obs": 11, "extrap": 2.5})
    source = "004"
    options = {
        "t1": 10.0,
        "n_obs": 21,
        "extrap": 5.0,
        "hidden": 4,
        "activation": "tanh",
        "init_scale": 1e-3,
        "frac_physics": 0.25,
        "frac_formula": 0.6,
        "formula_lr_ratio": 2.0,
        "curriculum_step": 0,
        "n_samples": 10000,
        "regression": "subset",
        "max_terms": 2,
        "tol": 0.02,
        "cat_powers": ",".join(f"{p / 100:g}" for p in range(50, 155, 5) if p != 100),
        "library": "cat",
        "target": "response",
        "learn_y0": False,
        "y0_lead": 0.5,
        "noise": 0.0,
    }
    option_ranges = {
        "t1": positive(),
        "n_obs": integer(2),
        "extrap": non_negative(),
        "hidden": integer(1),
        "activation": one_of("tanh", "relu", "sigmoid"),
        "init_scale": non_negative(),
        "frac_physics": probability(),
        "frac_formula": probability(),
        "formula_lr_ratio": positive(),
        "curriculum_step": integer(0),
        "n_samples": integer(2),
        "regression": one_of("subset", "stlsq"),
        "max_terms": integer(1),
        "tol": non_negative(),
        "cat_powers": text(),
        "library": one_of("cat", "full"),
        "target": one_of("response", "nn"),
        "learn_y0": flag(),
        "y0_lead": positive(),
        "noise": non_negative(),
    }
    solver_defaults = {"rtol": 1e-7, "atol": 1e-7, "dt": 0.05}
    protocol = TrainingProtocol(
        defaults={"iters": 300, "lr": 0.05, "budget": 180.0},
        phases=default_phases(
            Phase(
                "hybrid-phases",
                "iters",
                "Adam, `iters` shared by its phases: `frac_physics`, the rest, `frac_formula`",
                "004 ('Tricks-of-the-trade', 'Summary of part 1'): the mechanistic parameters with the"
                " NN frozen, then the NN with them frozen, then symbolic regression and the found"
                " formula retrained",
            )
        ),
        # the metrics that `fit` adds (`TrainResult.info`): the claims test them
        fit_metrics=("found_terms", "formula_fit_rmse_relative", "formula_interaction_rel_error"),
    )
    claims = (
        Claim(
            "finds-term",
            "004, symbolic regression",
            "sparse regression of the learnt correction finds a cat power term",
            "slides: cat^0.9 - cat + 0.5 cat^2 (truth cat^0.95 - cat)",
            "found_terms",
            "contains",
            "cat^0.95",
            "the data come from the slides' retrained cat^0.95 model: the truth is in the library",
        ),
        Claim(
            "retrained-formula-fits",
            "004, retraining",
            "the found formula, retrained, fits the data",
            "slides: retrained model matches the data",
            "formula_fit_rmse_relative",
            "<=",
            0.01,
            "1% of the signal's RMS: the formula is the true model class",
        ),
        Claim(
            "retrained-interaction",
            "004, retraining",
            "the retrained predation term is the true one",
            "slides: d cat/dt = -1.2 cat + 2.1 rabbit cat^0.95",
            "formula_interaction_rel_error",
            "<=",
            0.02,
            "2% along the trajectory's states",
        ),
    )

    @property
    def mlp(self) -> MLP:
        return MLP(sizes=(2, self.hidden, 1), activation=self.activation)

    @property
    def hybrid(self) -> Parametric:
        """The hybrid model on the state (rabbit, cat), without the learnt initial condition."""
        return hybrid_model(self.mlp, init_scale=self.init_scale)

    @property
    def model(self) -> Parametric:
        return self.wrap(self.hybrid)

    def wrap(self, model: Parametric) -> Parametric:
        """`model`, with the learnt initial condition when `learn_y0` is set."""
        return learnt_initial_model(model, float(self.y0_lead)) if self.learn_y0 else model

    @property
    def candidates(self) -> tuple[Monomial, ...]:
        """The regression's library of candidate terms (options `library`, `cat_powers`)."""
        if self.library not in ("cat", "full"):
            raise ValueError(f"unknown library {self.library!r}; choose from cat, full")
        powers = [float(p) for p in str(self.cat_powers).split(",") if p.strip()]
        return cat_power_library(powers, rabbit=self.library == "full")

    def make_data(self, seed: int) -> Dataset:
        """Observations of the truth (`true_field`) at `n_obs` uniform times in [0, t1],
        with Gaussian noise of standard deviation `noise` (default 0: `seed` then changes
        nothing).  With `learn_y0`, the clock-augmented data of `learnt_initial_model`:
        times -`y0_lead`, t_0, t_1, ...; states (rabbit, cat, t), starting from the observed
        (noisy) initial state; no backward window (see `trajectory_metrics`)."""
        plain = self.plain_data(seed)
        if not self.learn_y0:
            return plain
        return clock_augmented(plain, float(self.y0_lead), seed)

    def plain_data(self, seed: int) -> Dataset:
        """The observations on the state (rabbit, cat) (`make_data` without `learn_y0`)."""
        t = np.linspace(0.0, self.t1, self.n_obs)
        n_ext = max(2, round((self.n_obs - 1) * self.extrap / self.t1))
        truth = {**TRUTH, "y0": Y0.tolist(), "seed": seed}
        return trajectory_dataset(
            lambda y: true_field(y, np),
            Y0,
            t,
            extrap=self.extrap,
            n_extrap=n_ext,
            noise=float(self.noise),
            rng=np.random.default_rng(seed),
            truth=truth,
        )

    def plain_predictor(self, predict: Predictor, data: Dataset) -> tuple[Predictor, Dataset]:
        """A predictor on the state (rabbit, cat) from the observed initial state, and the
        plain data, from the back-end's predictor and the task's data.  With `learn_y0`, the
        predictor first runs the lead-in from y_obs(0) to the learnt initial state, then
        solves from there (with the clock far past the lead-in, so it also runs backward)."""
        if not self.learn_y0:
            return predict, data
        # data.y0 = (y_obs(0), -lead): every prediction starts at the learnt state
        plain = lead_in_predictor(predict, data.y0, float(self.y0_lead))
        return plain, self.plain_data(int(data.truth.get("seed", 0)))

    # -- training -------------------------------------------------------------------------------

    def fit(
        self,
        impl: AbstractBackend,
        params: Params,
        *,
        iters: int,
        lr: float,
        callback: TrainCallback | None = None,
        curriculum: int = 0,
    ) -> TrainResult:
        """Phase 1 (mechanistic parameters, NN frozen), phase 2 (NN, mechanistic frozen),
        symbolic regression of the NN, phase 3 (the found formula, all its parameters);
        each phase on a back-end of `impl`'s kind (`impl.rebuild`).

        **Returns:** the hybrid model's parameters after phase 2; `loss_history` of all
        three phases in turn (phase 3 is the formula's loss); `info` with the phases'
        lengths, the found terms and the retrained formula (see `formula_info`).
        """
        hybrid_spec = self.hybrid
        n_physics = round(iters * self.frac_physics)
        n_formula = round(iters * self.frac_formula)
        n_nn = iters - n_physics - n_formula
        stages = curriculum_stages(impl.data.n_obs, curriculum or int(self.curriculum_step))
        phases = PhasedTraining(callback)
        # the learnt initial condition (with `learn_y0`) is trained in every phase
        extra = [k for k in params if k == Y0_OFFSET]
        nn_keys = [k for k in params if k not in MECHANISTIC and k not in extra]

        nn = {k: params[k] for k in nn_keys}
        physics = _Variant(
            self, self.wrap(frozen_model(hybrid_spec, nn, name="phase 1: mechanistic, NN frozen"))
        )
        mech = phases.train(
            impl, physics, {k: params[k] for k in (*MECHANISTIC, *extra)}, label="physics", iters=n_physics,
            lr=lr, stages=stages,
        )  # fmt: skip
        fixed = {k: mech[k] for k in MECHANISTIC}
        correction = _Variant(
            self, self.wrap(frozen_model(hybrid_spec, fixed, name="phase 2: NN, mechanistic frozen"))
        )
        nn = phases.train(
            impl,
            correction,
            {**nn, **{k: mech[k] for k in extra}},
            label="nn",
            iters=n_nn,
            lr=lr,
            stages=stages,
        )
        hybrid = {k: np.asarray({**mech, **nn}[k]) for k in params}

        start = time.perf_counter()
        terms, fit = self.regress(hybrid, impl.data)
        phases.time_s += time.perf_counter() - start
        formula_terms, initial = formula_start(hybrid, terms, fit, response=self.target == "response")
        initial.update({k: hybrid[k] for k in extra})
        formula_task = _Variant(self, self.wrap(formula_model(formula_terms, initial)))
        before = len(phases.history)
        info = found_info(terms, fit, response=self.target == "response")
        try:
            final = phases.train(
                impl,
                formula_task,
                initial,
                label="formula",
                iters=n_formula,
                lr=lr * float(self.formula_lr_ratio),
                stages=[impl.data.n_obs],
            )
            if not (np.all(np.isfinite(phases.history[before:])) and np.all(np.isfinite(flatten(final)))):
                raise FloatingPointError("non-finite loss or parameters")
            info.update(self.formula_info(impl.rebuild(formula_task), formula_terms, initial, final))
        except (RuntimeError, FloatingPointError, ValueError, OverflowError) as exc:
            # a bad regression (e.g. two nearly collinear powers with large coefficients) can
            # make the formula diverge: a finding, recorded, not a failure of the hybrid fit
            del phases.history[before:]
            info["formula_failed"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        info["phase_iters"] = [phases.lengths[k] for k in ("physics", "nn", "formula")]
        info["curriculum_stages"] = list(stages)
        return TrainResult(params=hybrid, loss_history=phases.history, time_s=phases.time_s, info=info)

    # -- symbolic regression ----------------------------------------------------------------------

    def samples(self, params: Params, data: Dataset) -> np.ndarray:
        """`n_samples` states along the trained hybrid model's trajectory over the training
        window (DOP853 in NumPy, rtol = atol = 1e-10), shape (n_samples, 2), from the
        learnt initial state with `learn_y0`."""
        model = self.hybrid
        y0, t0 = data.y0, data.t[0]
        if Y0_OFFSET in params:  # clock-augmented data: the window starts after the lead-in
            lead_in = solve_truth(
                lambda y: self.model.rhs(params, y, np), data.y0, data.t[:2], rtol=1e-10, atol=1e-10
            )
            y0, t0 = lead_in[-1, :, :2], data.t[1]
        times = np.linspace(t0, data.t[-1], int(self.n_samples))
        states = solve_truth(lambda y: model.rhs(params, y, np), y0, times, rtol=1e-10, atol=1e-10)
        return states.reshape(-1, 2)

    def regress(self, params: Params, data: Dataset) -> tuple[tuple[Monomial, ...], SparseFit]:
        """Sparse regression of rabbit NN(rabbit, cat) (`target` = "nn", the slides'
        y = NN) or of rabbit (cat + NN(rabbit, cat)) (`target` = "response", the whole
        predation response up to delta) on rabbit times the library terms.

        **Returns:** `(library, fit)`, `fit.coef` over the whole library."""
        x = self.samples(params, data)
        nn = self.mlp.rhs({k[3:]: v for k, v in params.items() if k.startswith("nn_")}, x, np)[:, 0]
        library = self.candidates
        fit = regress_correction(
            x,
            nn,
            library,
            target=str(self.target),
            regression=str(self.regression),
            max_terms=int(self.max_terms),
            tol=float(self.tol),
        )
        return library, fit

    def formula_info(
        self, impl: AbstractBackend, terms: Sequence[Monomial], initial: Params, final: Params
    ) -> dict[str, Any]:
        """What the retraining made of the found formula (JSON-able): `retrained_info`,
        the predation term's errors and the formula's trajectory errors."""
        info = retrained_info(terms, initial, final, TRUTH)
        predict, data = self.plain_predictor(lambda t, y0: impl.predict(final, t, y0), impl.data)
        states = data.y_true.reshape(-1, 2)
        model = formula_model(terms, final)
        interaction = lambda x: model.rhs(final, x, np)[:, 1] + final["gamma"] * x[:, 1]
        info.update(
            {f"formula_{k}": v for k, v in predation_metrics(interaction, states, **_PREDATION).items()}
        )
        info.update({f"formula_{k}": v for k, v in trajectory_metrics(predict, data).items()})
        if Y0_OFFSET in final:
            info["formula_y0_learnt_error"] = float(np.linalg.norm(predict(data.t[:2], data.y0)[0] - Y0))
        return info

    # -- metrics --------------------------------------------------------------------------------------

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        """Trajectory errors of the hybrid model, its mechanistic parameters and their
        relative errors against the truth, `interaction_rel_error` and the effective power
        law of the predation term; with `learn_y0`, the errors of the observed and of the
        learnt initial state against the true one."""
        predict, plain = self.plain_predictor(predict, data)
        metrics = trajectory_metrics(predict, plain)
        for k in MECHANISTIC:
            metrics[k] = float(params[k])
            metrics[f"{k}_rel_error"] = abs(float(params[k]) - TRUTH[k]) / TRUTH[k]
        model = self.hybrid
        states = plain.y_true.reshape(-1, 2)
        interaction = lambda x: model.rhs(params, x, np)[:, 1] + float(params["gamma"]) * x[:, 1]
        metrics.update(predation_metrics(interaction, states, **_PREDATION))
        if Y0_OFFSET in params:
            metrics["y0_observed_error"] = float(np.linalg.norm(plain.y[0] - Y0))
            metrics["y0_learnt_error"] = float(np.linalg.norm(predict(plain.t[:2], plain.y0)[0] - Y0))
        return metrics

    def trajectories(self, predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
        """The default figure data, on the state (rabbit, cat) (see `plain_predictor`)."""
        from harness import trajectories

        return trajectories(*self.plain_predictor(predict, data))
