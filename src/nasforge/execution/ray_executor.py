"""Run evaluations as Ray tasks, on this machine or on a Ray cluster (``pip install
'nasforge[ray]'``).

Each evaluation is one task that asks the cluster for ``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs; :meth:`Study.optimize` keeps ``max_workers`` of them running at
once and reserves the next trial as soon as one finishes (asynchronous, never generation by
generation). An evaluator that has a spec (``Evaluator.spec()``, e.g. the tabular benchmark)
travels as its spec and is rebuilt once per Ray worker process; others are pickled (put in
Ray's object store once). A task whose worker process or node dies raises
:class:`~nasforge.execution.base.WorkerLost`: the study marks the trial FAILED, retryable,
and evaluates its proposal again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.execution.base import Executor, WorkerLost, call_shipped, ship

__all__ = ["RayExecutor"]

R = TypeVar("R")


class RayExecutor(Executor):
    """Evaluations as Ray tasks with per-trial resources.

    Args:
        address: The Ray cluster to join: ``None`` starts a local Ray instance (or uses the
            one this process already started), ``"auto"`` joins the cluster of this machine,
            ``"ray://host:10001"`` a remote one through Ray Client.
        cpus_per_trial: CPUs each evaluation reserves (fractions allowed, e.g. ``0.5``).
        gpus_per_trial: GPUs each evaluation reserves (fractions share a GPU).
        max_workers: Evaluations running at once; ``None``: as many as the cluster's CPUs
            and GPUs fit.
        num_cpus, num_gpus: Logical resources of a local Ray instance started here (Ray's
            default: the machine's cores and GPUs).

    Raises:
        MissingDependencyError: Ray is not installed.
        InvalidConfigError: A resource is negative, or the cluster cannot fit one trial.

    Example:
        >>> from nasforge.execution.ray_executor import RayExecutor
        >>> with RayExecutor(cpus_per_trial=1) as ex:  # doctest: +SKIP
        ...     study.optimize(evaluator, n_trials=100, executor=ex)
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        max_workers: int | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise MissingDependencyError(
                "--executor ray needs Ray: pip install 'nasforge[ray]'"
            ) from None
        per_trial = (("cpus_per_trial", cpus_per_trial), ("gpus_per_trial", gpus_per_trial))
        for label, value in per_trial:
            if not (isinstance(value, (int, float)) and value >= 0):
                raise InvalidConfigError(f"{label} must be a number >= 0, got {value!r}.")
        if max_workers is not None and max_workers < 1:
            raise InvalidConfigError(f"max_workers must be at least 1, got {max_workers}.")
        self._ray = ray
        start = time.perf_counter()
        self._owns = False
        if not ray.is_initialized():
            _join(ray, address, num_cpus, num_gpus)
            self._owns = True
        #: Seconds it took to start or join Ray.
        self.startup_seconds = time.perf_counter() - start
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        fits = []
        if cpus_per_trial > 0:
            fits.append(math.floor(cpus / cpus_per_trial + 1e-9))
        if gpus_per_trial > 0:
            fits.append(math.floor(gpus / gpus_per_trial + 1e-9))
        capacity = min(fits) if fits else max(1, int(cpus))
        if capacity < 1:
            raise InvalidConfigError(
                f"The Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; a trial asks for "
                f"{cpus_per_trial:g} CPUs and {gpus_per_trial:g} GPUs. Lower --cpus-per-trial"
                "/--gpus-per-trial or add machines to the cluster."
            )
        self.max_workers = max_workers or capacity
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self._remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(
            call_shipped
        )
        self._refs: dict[int, tuple[Any, Any]] = {}

    def _arg(self, value: Any) -> Any:
        """Evaluators travel as their spec, or once through the object store."""
        from nasforge.evaluators.base import Evaluator

        value = ship(value)
        if not isinstance(value, Evaluator):
            return value
        if id(value) not in self._refs:
            self._refs[id(value)] = (value, self._ray.put(value))
        return self._refs[id(value)][1]

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        ref = self._remote.remote(fn, *(self._arg(a) for a in args), **kwargs)
        inner = ref.future()
        outer: Future[R] = Future()

        def relay(done: Future[Any]) -> None:
            try:
                outer.set_result(done.result())
            except BaseException as exc:
                outer.set_exception(_translate(exc))

        inner.add_done_callback(relay)
        return outer

    def shutdown(self) -> None:
        self._refs.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False


def _translate(exc: BaseException) -> BaseException:
    """The evaluation's own exception, or :class:`WorkerLost` when Ray lost the worker."""
    from ray import exceptions as rex

    lost = tuple(
        getattr(rex, name)
        for name in (
            "WorkerCrashedError",
            "NodeDiedError",
            "OwnerDiedError",
            "ActorDiedError",
            "ObjectLostError",
            "TaskUnschedulableError",
            "RaySystemError",
        )
        if hasattr(rex, name)
    )
    if isinstance(exc, lost):
        return WorkerLost(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if isinstance(exc, rex.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc


def _join(ray: Any, address: str | None, num_cpus: int | None, num_gpus: int | None) -> None:
    """Start Ray here (``address=None``) or join the cluster at ``address``.

    Raises:
        InvalidConfigError: No Ray cluster answers at ``address`` (one line instead of Ray's
            own traceback and log).
    """
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            num_gpus=num_gpus if address is None else None,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        # a failed ray.init leaves Ray half set up (a client connection that never came):
        # without this, a later ray.init in the same process fails on Ray's own assertion
        with contextlib.suppress(Exception):  # nothing more to undo; the error below says why
            ray.shutdown()
        if address is None:
            raise InvalidConfigError(
                f"Ray could not start on this machine ({_first_line(exc)}); check that Ray "
                "is installed properly, or use --executor pool."
            ) from None
        from nasforge.storage import mask_url

        shown = mask_url(address)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise InvalidConfigError(
            f"--ray-address {shown!r}: no Ray cluster answers there ({_first_line(exc)}). "
            "Start one with 'ray start --head' (then --ray-address auto), give the address of "
            "a running cluster (ray://HOST:10001), or leave --ray-address out to start Ray "
            "on this machine."
        ) from None


def _first_line(exc: BaseException) -> str:
    """The first line of Ray's message, abbreviated, with any password hidden."""
    from nasforge.storage import mask_url

    text = str(exc).strip().splitlines()
    line = mask_url(text[0]) if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."
