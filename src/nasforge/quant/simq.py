"""SimQ-NAS: the sub-network of a trained elastic supernet and its quantization policy searched
together, by LINAS's loop of measured batches, lightly trained predictors and NSGA-II.

Sridhar, S. N., Szankin, M., Chen, F., Sundaresan, S. and Sarah, A. "SimQ-NAS: Simultaneous
Quantization Policy and Neural Architecture Search." arXiv:2312.13301, 2023; built on LINAS
(Lightweight Iterative NAS) of Cummings, D., Sarah, A., Sridhar, S. N., Szankin, M., Munoz,
J. P. and Sundaresan, S. "A Hardware-Aware System for Accelerating Deep Neural Network
Optimization." arXiv:2202.12954, 2022, as the authors' DyNAS-T toolkit runs it (IntelLabs
``dynast/search/tactic/linas.py``; the quantized OFA ResNet-50 search space of
``supernetwork_registry.py`` and ``ofa_quantization/``).

One search space holds both halves: the base space's decisions (depth, kernel, expansion,
resolution of an ``ofa`` sub-network) and one precision per quantizable layer (the ``+quant``
form, :class:`~nasforge.spaces.quantized.QuantizedSpace`). SimQ-NAS gives every layer the
choice of INT8 or FP32 (DyNAS-T's ``q_bits`` in ``{8, 32}``), so the default ``precisions``
are ``("int8", "fp32")``; any of :data:`nasforge.ops.quant.PRECISIONS` may be offered.

**A real evaluation** (:class:`QuantizedSubnetEvaluator`) of a pair: the sub-network with
its inherited weights (batch norms recalibrated, as Once-for-All measures sub-networks),
quantized post-training with the policy (no retraining: weights per output channel,
activations per tensor with ranges calibrated on a few training batches, as DyNAS-T calibrates
with Intel Neural Compressor), its top-1 accuracy on held-out images, and the quantized
network's model bits, BOPs and parameters (:func:`nasforge.ops.quant.model_bits`, ``bops``).

**The loop** (LINAS, :func:`search_quantized_subnets`):

1. measure ``population`` random (architecture, policy) pairs;
2. fit one light predictor per objective on the one-hot encodings of the joint decisions of
   every pair measured so far (in canonical form: absent layers take the first precision);
3. run NSGA-II (:class:`~nasforge.strategies.nsga2.NSGA2`, ``population`` children per
   generation) from a random population for ``inner_evaluations`` predicted evaluations;
4. measure the final population of that run (the pairs not measured yet; short of
   ``population``, the next best predicted pairs by non-dominated rank and crowding);
5. repeat from 2 until ``evaluations`` pairs are measured.

Every measurement is a trial of a multi-objective study (with ``predicted_<metric>`` and its
``simq_iteration``). The loop is a function of the seed and of the measured values, so a study
reopened with the same settings replays it from the stored trials and measures only what is
new (``evaluations`` counts the whole study).

Where this differs from the paper: DyNAS-T's predictor picks the better of ridge regression
and an RBF support-vector regressor by cross-validated error (scikit-learn); here the default
``predictor="ridge"`` is nasforge's ridge regression with the penalty chosen by exact
leave-one-out error (:func:`nasforge.predictors.ridge.ridge_loo`), and ``"mlp"`` the MLP
ensemble (:class:`~nasforge.predictors.MLPEnsemble`). DyNAS-T's inner loop runs 10,000
predicted evaluations with a population of 50; the defaults here (2,000 and 20) fit a CPU.
Objectives: accuracy and any of ``model_bits``, ``bops``, ``params_M``; not the paper's
measured latency (fake quantization runs slower on a CPU; int8 latency is
:mod:`nasforge.quant.onnx`'s), nor DyNAS-T's symmetric/asymmetric weight mode decision.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Direction, Result, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.predictors.base import Predictor
    from nasforge.spaces.base import SearchSpace
    from nasforge.study import Study

__all__ = ["METRICS", "PRECISIONS", "PREDICTORS", "STRATEGY", "QuantizedSubnetEvaluator"]
__all__ += ["SimQResult", "search_quantized_subnets"]

logger = logging.getLogger(__name__)

#: SimQ-NAS's per-layer choice: INT8 or left in FP32 (DyNAS-T's ``q_bits`` in ``{8, 32}``).
PRECISIONS: tuple[str, ...] = ("int8", "fp32")
#: The metrics of a real evaluation and their directions (any may be an objective).
METRICS: dict[str, Direction] = {"accuracy": Direction.MAXIMIZE}
METRICS.update(dict.fromkeys(("model_bits", "bops", "params_M"), Direction.MINIMIZE))
#: The predictors by name.
PREDICTORS: tuple[str, ...] = ("ridge", "mlp")
#: The strategy name recorded in the study.
STRATEGY = "simq-linas"


# -- the real evaluation ------------------------------------------------------------------------
class QuantizedSubnetEvaluator(Evaluator):
    """Measures an (architecture, policy) pair of ``qspace`` on a trained elastic supernet:
    the inherited sub-network (batch norms recalibrated), quantized post-training with the
    policy and calibrated, its accuracy on held-out images and its costs.

    Args:
        supernet: The elastic supernet (``set_active``, ``extract``, ``active_resolution``).
        qspace: The ``+quant`` form of the supernet's space.
        data: ``SearchData``: batch norms and activation ranges are calibrated on its
            ``train`` half (``recalibration_batches``, ``calibration_batches`` batches), the
            accuracy measured on ``valid_images`` images of its ``valid`` half.
        cache_size: Recalibrated sub-networks kept (pairs that differ only in policy share
            one).

    Raises:
        InvalidConfigError: A count below 1.
    """

    cost_unit = "seconds"

    def __init__(
        self,
        supernet: Any,
        qspace: Any,
        data: Any,
        *,
        recalibration_batches: int = 4,
        calibration_batches: int = 4,
        valid_images: int = 500,
        cache_size: int = 8,
    ) -> None:
        self.recalibration_batches = _check_count("recalibration_batches", recalibration_batches)
        self.calibration_batches = _check_count("calibration_batches", calibration_batches)
        self.valid_images = _check_count("valid_images", valid_images)
        self.cache_size = _check_count("cache_size", cache_size)
        self.supernet, self.qspace, self.space, self.data = supernet, qspace, qspace.name, data
        self._subnets: OrderedDict[Architecture, tuple[Any, int]] = OrderedDict()

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return METRICS

    def subnet(self, base_arch: Architecture) -> tuple[Any, int]:
        """The stand-alone float sub-network of ``base_arch`` with inherited weights and
        recalibrated batch norms (the supernet's own statistics are put back), and its input
        side."""
        import torch

        from nasforge.elastic._accuracy import _batch_norms, recalibrate

        if base_arch in self._subnets:
            self._subnets.move_to_end(base_arch)
            return self._subnets[base_arch]
        net = self.supernet
        device = next(net.parameters()).device
        norms = _batch_norms(net)
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        try:
            net.set_active(base_arch)
            side = int(net.active_resolution)
            batches = self.data.fixed(
                "train", self.recalibration_batches * self.data.batch_size, device
            )
            recalibrate(net, batches, side)
            with torch.no_grad():
                model = net.extract(base_arch).eval()
        finally:
            for m, state in zip(norms, saved, strict=True):
                m.load_state_dict(state)
        self._subnets[base_arch] = (model, side)
        while len(self._subnets) > self.cache_size:
            self._subnets.popitem(last=False)
        return model, side

    def quantized(self, arch: Architecture) -> tuple[Any, int]:
        """The calibrated quantized network of the pair ``arch`` and its input side."""
        from nasforge.ops.elastic import resize_images
        from nasforge.ops.quant import calibrate

        base_arch, _ = self.qspace.split(arch)
        model, side = self.subnet(base_arch)
        qmodel = self.qspace.quantize(model, arch)
        device = next(model.parameters()).device
        count = self.calibration_batches * self.data.batch_size
        batches = [
            (x if x.shape[-1] == side else resize_images(x, side), y)
            for x, y in self.data.fixed("train", count, device)
        ]
        calibrate(qmodel, batches)
        return qmodel.eval(), side

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        import torch

        from nasforge.ops.elastic import resize_images
        from nasforge.ops.quant import bops, model_bits

        started = time.perf_counter()
        qmodel, side = self.quantized(arch)
        device = next(qmodel.parameters()).device
        hits = seen = 0
        with torch.no_grad():
            for x, y in self.data.fixed("valid", self.valid_images, device):
                if x.shape[-1] != side:
                    x = resize_images(x, side)
                hits += int((qmodel(x).argmax(1) == y).sum())
                seen += int(y.shape[0])
        metrics = {
            "accuracy": 100.0 * hits / max(1, seen),
            "model_bits": float(model_bits(qmodel)),
            "bops": float(bops(qmodel, (3, side, side))),
            "params_M": sum(p.numel() for p in qmodel.parameters()) / 1e6,
        }
        seconds = time.perf_counter() - started
        return Result(metrics, cost=seconds, seconds=seconds)

    def __repr__(self) -> str:
        return f"QuantizedSubnetEvaluator({self.space})"


# -- predictors ---------------------------------------------------------------------------------
def _fit(predictor: str | Predictor, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """A function predicting the metric of encodings, fitted to ``X`` and ``y``."""
    if isinstance(predictor, str):
        if predictor == "ridge":
            from nasforge.predictors.ridge import ridge_loo

            return ridge_loo(X, y).predict
        from nasforge.predictors import MLPEnsemble

        model: Predictor = MLPEnsemble(n_members=3, epochs=200, seed=seed).fit(X, y)
    else:
        model = copy.deepcopy(predictor).fit(X, y)
    return lambda rows: np.asarray(model.predict(rows)[0])


def _onehot(space: SearchSpace, archs: Sequence[Architecture]) -> np.ndarray:
    """One-hot encodings (one block per decision) of ``archs``, as rows."""
    counts = np.array([len(d.options) for d in space.decisions()])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = np.array([a.choices for a in archs], dtype=np.int64).reshape(len(archs), len(counts))
    out = np.zeros((len(archs), int(counts.sum())))
    out[np.arange(len(archs))[:, None], offsets + rows] = 1.0
    return out


# -- the search ---------------------------------------------------------------------------------
@dataclass
class SimQResult:
    """What :func:`search_quantized_subnets` found.

    Attributes:
        study: The multi-objective study; every measured pair is one of its trials.
        front: The measured pairs no other measured pair dominates on the objectives.
        space: The joint space (``<base>+quant``; ``space.split(trial.arch)``).
        evaluator: The evaluator that measured them (to measure other pairs alike).
        iterations: Per LINAS iteration: ``proposed`` (its batch), ``measured`` (in all
            after it), ``fresh`` (measured in this call).
    """

    study: Study
    front: list[Trial]
    space: Any
    evaluator: QuantizedSubnetEvaluator
    iterations: list[dict[str, Any]] = field(default_factory=list)


def _open_supernet(source: Any) -> tuple[Any, Any, Any, str]:
    """The supernet module, its space, its training settings (or ``None``) and a label."""
    from nasforge.elastic import TrainedSupernet, load_supernet

    path = isinstance(source, (str, os.PathLike))
    label = os.path.abspath(source) if path else "in-memory supernet"
    if path:
        source = load_supernet(source)
    if isinstance(source, TrainedSupernet):
        return source.supernet, source.space, source.settings, label
    if all(hasattr(source, a) for a in ("set_active", "extract", "space", "active_resolution")):
        return source, source.space, None, label
    raise InvalidConfigError(
        "search_quantized_subnets needs a trained elastic supernet: its folder, a TrainedSupernet "
        f"(nasforge.elastic.load_supernet) or the supernet module; got {type(source).__name__}."
    )


def _search_data(data: Any, space: Any, settings: Any, resolutions: Sequence[int]) -> Any:
    from nasforge.elastic import training_data
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot.base import SupernetSettings
    from nasforge.train.data import DataSplits

    if isinstance(data, SearchData):
        return data
    if isinstance(data, DataSplits):
        if settings is not None:
            return training_data(space, data, settings)
        return SearchData.from_splits(data, SupernetSettings(resolution=max(resolutions)))
    raise InvalidConfigError(
        f"data must be DataSplits (e.g. nasforge.train.load_cifar10(...) or "
        f"SyntheticImages(...).load()) or SearchData; got {type(data).__name__}."
    )


def _check_count(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidConfigError(f"{name} must be an integer >= {least}, got {value!r}.")
    return value


def search_quantized_subnets(
    supernet: Any,
    data: Any,
    *,
    precisions: Sequence[str | int] = PRECISIONS,
    objectives: Sequence[str] = ("accuracy", "model_bits"),
    evaluations: int = 100,
    population: int = 20,
    inner_evaluations: int = 2000,
    predictor: str | Predictor = "ridge",
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
    weights_only: bool = False,
    resolutions: Sequence[int] | None = None,
    recalibration_batches: int = 4,
    calibration_batches: int = 4,
    valid_images: int = 500,
) -> SimQResult:
    """Search the sub-networks of a trained elastic supernet and their per-layer precisions
    together (SimQ-NAS with LINAS's loop; see the module docstring).

    Args:
        supernet: The supernet's folder (:func:`nasforge.elastic.train_supernet`), a
            :class:`~nasforge.elastic.TrainedSupernet`, or the supernet module.
        data: The images: ``DataSplits`` (split as the supernet was trained, so the
            accuracy is measured on images it did not train on) or ``SearchData``.
        precisions: The precisions each layer may take (``"int8"``, ``8``, ``"fp32"``...).
        objectives: The metrics searched, of :data:`METRICS` (accuracy is maximised, the
            costs minimised); two or three.
        evaluations: Pairs measured in the whole study (a reopened one measures the rest).
        population, inner_evaluations: Pairs measured per iteration (the inner NSGA-II's
            population); predicted evaluations of the inner NSGA-II per iteration.
        predictor: ``"ridge"``, ``"mlp"`` or a nasforge ``Predictor`` (copied per objective).
        seed: Seed of the random pairs, the predictors and the inner searches.
        storage, study_name: Where the study is kept, its name (one of equal settings goes on).
        weights_only, resolutions: Quantize the weights only; the input sides searched
            (default: those the supernet was trained at).
        recalibration_batches, calibration_batches, valid_images: The evaluator's.

    Returns:
        The study, its Pareto front of measured pairs, the joint space and the evaluator.

    Example:
        >>> import tempfile
        >>> from nasforge.elastic import TrainSettings, train_supernet
        >>> from nasforge.train import SyntheticImages
        >>> data = SyntheticImages(num_classes=4, n_train=128, n_test=4, size=16).load()
        >>> out, settings = tempfile.mkdtemp(), TrainSettings(
        ...     width_mult=0.25, resolutions=(16,), batch_size=32, epochs=1, steps_per_epoch=1)
        >>> _ = train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu")
        >>> found = search_quantized_subnets(out, data, evaluations=4, population=2,
        ...     inner_evaluations=10, valid_images=16, calibration_batches=1)
        >>> len(found.study.trials), sorted(set(found.space.split(found.front[0].arch)[1]))
        (4, ['fp32', 'int8'])

    Raises:
        InvalidConfigError: A precision outside :data:`nasforge.ops.quant.PRECISIONS` (listed),
            counts out of range, a predictor, supernet or data of the wrong kind, resolutions
            the space does not have.
        UnknownNameError: An objective that is not a metric (the valid ones are listed).
        UnsupportedOperationError: A layer without a quantized form (named by ``+quant``).
        StudyConflictError: A study of that name exists with other settings.
    """
    from nasforge import spaces
    from nasforge.ops.quant import check_precision
    from nasforge.predictors.base import Predictor

    offered = tuple(dict.fromkeys(check_precision(p) for p in precisions))
    if len(offered) < 2:
        raise InvalidConfigError(
            f"precisions must offer at least two precisions to choose from, got {list(offered)}."
        )
    names = tuple(objectives)
    for name in names:
        if name not in METRICS:
            raise UnknownNameError("SimQ-NAS objective", name, list(METRICS))
    if len(set(names)) != len(names) or not 2 <= len(names) <= 3 or "accuracy" not in names:
        raise InvalidConfigError(
            f"objectives must be 'accuracy' and one or two distinct costs of "
            f"{[m for m in METRICS if m != 'accuracy']}, got {list(names)}."
        )
    _check_count("evaluations", evaluations, 2)
    _check_count("population", population, 2)
    _check_count("inner_evaluations", inner_evaluations, population)
    if not (isinstance(predictor, Predictor) or predictor in PREDICTORS):
        raise InvalidConfigError(
            f"predictor must be one of {list(PREDICTORS)} or a nasforge Predictor, got "
            f"{predictor!r}."
        )
    module, base, settings, label = _open_supernet(supernet)
    allowed = tuple(int(r) for r in getattr(base, "RESOLUTIONS", ()))
    if resolutions is None and settings is not None:
        from nasforge.elastic._train import trained_resolutions

        resolutions = trained_resolutions(base, settings)
    sides = tuple(sorted({int(r) for r in (resolutions or allowed)}))
    if allowed and any(r not in allowed for r in sides):
        raise InvalidConfigError(
            f"resolutions {list(sides)} are not all inputs of space {base.name!r}; choose from "
            f"{list(allowed)}."
        )
    space_params = {"precisions": list(offered), "weights_only": bool(weights_only)}
    qspace = spaces.create(f"{base.name}+quant", **space_params)
    search_data = _search_data(data, base, settings, sides or allowed)
    evaluator = QuantizedSubnetEvaluator(
        module, qspace, search_data, recalibration_batches=recalibration_batches,
        calibration_batches=calibration_batches, valid_images=valid_images,
    )  # fmt: skip
    params = {
        "population": population, "inner_evaluations": inner_evaluations,
        "predictor": predictor if isinstance(predictor, str) else type(predictor).__name__,
        "resolutions": list(sides), "recalibration_batches": recalibration_batches,
        "calibration_batches": calibration_batches, "valid_images": valid_images,
        "supernet": label,
    }  # fmt: skip
    goals = tuple(f"{m}:{'max' if METRICS[m] is Direction.MAXIMIZE else 'min'}" for m in names)
    study = _open_study(qspace, space_params, params, goals, seed, storage, study_name)
    loop = _Loop(qspace, evaluator, study, names, sides, predictor, seed, population)
    loop.run(evaluations, inner_evaluations)
    return SimQResult(study, study.pareto_front(), qspace, evaluator, loop.iterations)


def _open_study(
    qspace: Any, space_params: Mapping[str, Any], params: Mapping[str, Any],
    objectives: tuple[str, ...], seed: int, storage: Any, study_name: str | None,
) -> Study:  # fmt: skip
    """The multi-objective study of the search, created or reopened (same settings)."""
    from nasforge.storage import StudyRecord, get_storage
    from nasforge.study._subnets import open_recorded

    store = get_storage(storage)
    record = StudyRecord(
        name=study_name or f"{qspace.name}-{STRATEGY}-seed{seed}-{os.urandom(4).hex()}",
        space=qspace.name, strategy=STRATEGY, seed=int(seed), objectives=objectives,
        strategy_params=dict(params), space_params=dict(space_params), options={"oneshot": True},
    )  # fmt: skip
    return open_recorded(store, record)


class _Loop:
    """LINAS's iterations over one study (replayed from its trials where measured)."""

    def __init__(
        self,
        qspace: Any,
        evaluator: QuantizedSubnetEvaluator,
        study: Study,
        objectives: tuple[str, ...],
        resolutions: tuple[int, ...],
        predictor: str | Predictor,
        seed: int,
        population: int,
    ) -> None:
        self.qspace = qspace
        self.evaluator = evaluator
        self.study = study
        self.objectives = objectives
        self.signs = np.array(
            [1.0 if METRICS[m] is Direction.MAXIMIZE else -1.0 for m in objectives]
        )
        self.predictor, self.seed, self.population = predictor, int(seed), population
        self.done: dict[Architecture, Trial] = {t.arch: t for t in study.trials if t.state.finished}
        self.measured: list[Trial] = []
        self.iterations: list[dict[str, Any]] = []
        names = [d.name for d in qspace.decisions()]
        self._res_col = names.index("resolution") if "resolution" in names else None
        options = qspace.decisions()[self._res_col].options if self._res_col is not None else ()
        self._res_ok = [i for i, side in enumerate(options) if int(side) in resolutions]

    # the pairs of the searched resolutions, in canonical form
    def restrict(self, arch: Architecture) -> Architecture:
        if self._res_col is not None and arch.choices[self._res_col] not in self._res_ok:
            here = arch.choices[self._res_col]
            nearest = min(self._res_ok, key=lambda i: (abs(i - here), i))
            choices = list(arch.choices)
            choices[self._res_col] = nearest
            arch = self.qspace.from_choices(choices)
        out: Architecture = self.qspace.canonical(arch)
        return out

    def run(self, evaluations: int, inner_evaluations: int) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0]))
        batch = self._random(rng, self.population)
        predicted: list[dict[str, float]] = [{} for _ in batch]
        iteration = 0
        while True:
            fresh = 0
            for arch, guess in zip(batch, predicted, strict=True):
                if len(self.measured) >= evaluations:
                    break
                trial = self.done.get(arch)
                if trial is None:
                    extra = {"simq_iteration": float(iteration), **guess}
                    trial = self.study.record_architecture(arch, self.evaluator, extra=extra)
                    self.done[arch] = trial
                    fresh += 1
                self.measured.append(trial)
            self.iterations.append(
                {"iteration": iteration, "proposed": len(batch), "measured": len(self.measured),
                 "fresh": fresh}
            )  # fmt: skip
            logger.info("SimQ-NAS iteration %d: %d pairs measured", iteration, len(self.measured))
            if len(self.measured) >= evaluations:
                return
            iteration += 1
            models = self._fit(iteration)
            batch, predicted = self._propose(models, iteration, inner_evaluations)

    def _random(self, rng: np.random.Generator, count: int) -> list[Architecture]:
        """``count`` distinct random pairs (of the searched resolutions) not measured yet."""
        out: list[Architecture] = []
        seen = {t.arch for t in self.measured}
        for _ in range(100 * count):
            if len(out) >= count:
                break
            arch = self.restrict(self.qspace.sample(rng))
            if arch not in seen:
                seen.add(arch)
                out.append(arch)
        return out

    def _fit(self, iteration: int) -> list[Callable[[np.ndarray], np.ndarray]]:
        """One predictor per objective, fitted to every pair measured so far."""
        usable = [t for t in self.measured if all(m in t.metrics for m in self.objectives)]
        if len(usable) < 2:
            raise InvalidConfigError(
                f"Only {len(usable)} of the {len(self.measured)} pairs measured could be "
                f"scored; see the failed trials of study {self.study.name!r} for why."
            )
        X = _onehot(self.qspace, [t.arch for t in usable])
        seeds = np.random.SeedSequence([self.seed, 1, iteration]).generate_state(
            len(self.objectives)
        )
        return [
            _fit(self.predictor, X, np.array([t.metrics[m] for t in usable], dtype=float), int(s))
            for m, s in zip(self.objectives, seeds, strict=True)
        ]

    def _propose(
        self,
        models: list[Callable[[np.ndarray], np.ndarray]],
        iteration: int,
        inner_evaluations: int,
    ) -> tuple[list[Architecture], list[dict[str, float]]]:
        """NSGA-II on the predictors alone; its final population (then the best predicted
        of the rest) that is not measured yet."""
        from nasforge.pareto import crowding_distance, non_dominated_sort
        from nasforge.strategies.nsga2 import NSGA2

        inner_seed = int(np.random.SeedSequence([self.seed, 2, iteration]).generate_state(1)[0])
        nsga = NSGA2(
            self.qspace, seed=inner_seed, population_size=self.population,
            offspring_size=self.population,
        )  # fmt: skip
        scored: dict[Architecture, np.ndarray] = {}
        told = 0
        while told < inner_evaluations:
            size = min(self.population, inner_evaluations - told)
            archs = [self.restrict(nsga.ask().arch) for _ in range(size)]
            X = _onehot(self.qspace, archs)
            values = np.stack([model(X) for model in models], axis=1)
            for arch, row in zip(archs, values, strict=True):
                scored[arch] = row
                nsga.tell(Trial(told, arch, TrialState.COMPLETE, scores=tuple(row * self.signs)))
                told += 1
        seen = {t.arch for t in self.measured}
        batch = list(dict.fromkeys(t.arch for t in nsga.population if t.arch not in seen))
        rest = [a for a in scored if a not in seen and a not in batch]
        if len(batch) < self.population and rest:  # the best predicted of the rest
            points = np.array([scored[a] * self.signs for a in rest])
            for members in non_dominated_sort(points):
                distance = crowding_distance(points[members])
                batch += [rest[int(members[i])] for i in np.argsort(-distance, kind="stable")]
                if len(batch) >= self.population:
                    break
        batch = batch[: self.population]
        if len(batch) < self.population:  # a small space: fill with random pairs
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 3, iteration]))
            extra = [a for a in self._random(rng, self.population) if a not in batch]
            batch += extra[: self.population - len(batch)]
        guesses = [
            {f"predicted_{m}": float(v) for m, v in zip(self.objectives, scored[a], strict=True)}
            if a in scored
            else {}
            for a in batch
        ]
        return batch, guesses
