"""Evaluator of the sub-networks of a fine-tuned ``llm`` super-network (registered
``"super-lm"``): held-out perplexity with inherited weights, and their costs.

After InstaTune's one-shot fine-tuning (Sridhar, S. N. et al. "InstaTune: Instantaneous
Neural Architecture Search During Fine-Tuning." ICCV Workshops 2023, arXiv:2308.15609) every
sub-network is evaluated with the weights it inherits, without training, which is what makes
LLaMA-NAS's multi-objective search cheap (Sarah, A. et al. "LLaMA-NAS: Efficient Neural
Architecture Search for Large Language Models." arXiv:2405.18377, Sec. 3-4).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge import evaluators
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Direction, Result

__all__ = ["SuperLMEvaluator"]

#: The metric of quality.
PERPLEXITY = "perplexity"
#: The metrics known without evaluating.
FREE = ("params_M", "macs_M")


@evaluators.register("super-lm")
class SuperLMEvaluator(Evaluator):
    """Measures a sub-network of the super-network in ``dir`` (made by
    :func:`nasforge.lm.prepare_super_lm`): ``perplexity`` (``exp`` of the mean next-byte
    cross-entropy on the held-out split of the corpus it was trained on, with inherited
    weights), and ``params_M``, ``macs_M`` (of one sequence of ``seq_len`` tokens), which are
    free (known without evaluating). ``Result.cost`` is the seconds spent.

    Args:
        dir: The folder of the fine-tuned super-network.
        seq_len: Tokens per evaluation window (default the space's context).
        max_windows: Held-out windows measured (``None``: all of them).
        threads: CPU threads of an evaluation (``None``: all); not part of
            :meth:`spec`.

    Raises:
        InvalidConfigError: No fine-tuned super-network in ``dir``, or a ``seq_len`` beyond
            the position embedding.

    Example:
        >>> SuperLMEvaluator("no/such/folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidConfigError: 'no/such/folder' holds no fine-tuned llm ...
    """

    cost_unit = "seconds"

    def __init__(
        self,
        dir: str | os.PathLike[str],
        *,
        seq_len: int | None = None,
        max_windows: int | None = 64,
        threads: int | None = 1,
    ) -> None:
        from nasforge.lm.supernet import load_super_lm

        self.dir = Path(dir).expanduser().absolute()
        self.supernet, self.corpus, self.manifest = load_super_lm(dir)
        self.lm_space = self.supernet.space
        self.space = self.lm_space.name
        context = self.lm_space.CONTEXT
        self.seq_len = context if seq_len is None else int(seq_len)
        if not 1 <= self.seq_len <= context:
            raise InvalidConfigError(
                f"seq_len={seq_len} does not fit the position embedding ({context} positions); "
                f"give 1..{context}."
            )
        self.corpus.check_length(self.seq_len, "valid")
        if max_windows is not None and max_windows < 1:
            raise InvalidConfigError(f"max_windows must be at least 1, got {max_windows}.")
        self.max_windows = max_windows
        self.threads = threads

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {
            PERPLEXITY: Direction.MINIMIZE,
            "params_M": Direction.MINIMIZE,
            "macs_M": Direction.MINIMIZE,
        }

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return FREE

    def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
        return self.lm_space.costs(arch, seq=self.seq_len)

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        from nasforge.lm.train import perplexity
        from nasforge.train.trainer import num_threads

        start = time.perf_counter()
        with num_threads(self.threads):
            self.supernet.set_active(arch)
            value = perplexity(
                self.supernet, self.corpus, "valid", seq_len=self.seq_len,
                max_windows=self.max_windows,
            )  # fmt: skip
        metrics = {PERPLEXITY: value, **self.free_metrics(arch)}
        seconds = time.perf_counter() - start
        return Result(metrics, cost=max(seconds, 1e-9), seconds=seconds)

    def spec(self) -> dict[str, Any] | None:
        return {
            "name": "super-lm",
            "dir": str(self.dir),
            "seq_len": self.seq_len,
            "max_windows": self.max_windows,
        }

    def __repr__(self) -> str:
        return f"SuperLMEvaluator({str(self.dir)!r})"
