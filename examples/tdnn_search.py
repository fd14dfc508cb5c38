"""Search a time-delay network (TDNN) for speaker recognition on synthetic utterances, in the
manner of EfficientTDNN: kernel, dilation and width per layer, and depth, as elastic choices.

Wang, R., Wei, Z., Duan, H., Ji, S., Long, Y. and Hong, Z. "EfficientTDNN: Efficient
Architecture Search for Speaker Recognition." IEEE/ACM Transactions on Audio, Speech, and
Language Processing 30 (2022), arXiv:2103.13581. Their supernet is an ECAPA-TDNN (a frame
layer, residual blocks of 1-D convolutions, a 1x1 aggregation layer, statistics pooling and a
linear embedding) in which every block's kernel (1, 3 or 5), the number of blocks (2 to 4)
and each layer's width (a quarter to all of 512 channels) are *dynamic*: one set of weights
serves every sub-network, a smaller kernel being the centre of the larger and a narrower
layer the first channels of the wider (Section III). The supernet is trained progressively,
largest network first, then with kernels, depths and widths sampled in turn, and searched on
the weight-sharing sub-networks.

What is written here, as a user of nasforge would write it:

* the data: utterances of random content (white noise in every feature channel) whose
  speaker shows only in time: for speaker ``s`` the second half of the channels echoes the
  first half ``SPEAKER_LAGS[s]`` frames later (:func:`make_utterances`). Every frame on its
  own has the same distribution for every speaker, so a network with a receptive field of one
  frame is at chance, and a layer sees a lag ``L`` only if ``L`` is a multiple of its
  dilation within its kernel's span: kernel and dilation matter, as in speech;
* the network (:class:`TDNN`): a frame layer, residual TDNN blocks and statistics pooling
  (the mean and standard deviation of every channel over time, :class:`StatsPool`), written
  with ``nasforge.nn``: each layer's kernel, dilation and width is a ``ValueChoice`` and the
  number of blocks a ``Repeat``. Outside ``nasforge.nn.fixed`` the same code is the elastic
  supernet nasforge trains: kernels sliced at the centre and widths as the first channels by
  ``nasforge.nn.Conv1d``, and the dilation spreading the same taps apart (:func:`dilated`,
  a few lines here), so no supernet is written by hand;
* the training function (:func:`fit`) and the metric function the study calls
  (:func:`evaluate`), with a report per epoch so that early stopping can act.

Searches (:func:`main`), each found network then trained from scratch:

1. regularized evolution, every candidate trained from scratch through the ``function``
   evaluator (:func:`search_evolution`);
2. SPOS through ``nasforge.oneshot.search`` on the elastic supernet: one uniformly drawn path
   per step, then evolution scored on the shared weights (:func:`search_oneshot`; DARTS runs
   on the same supernet, mixing every choice);
3. EfficientTDNN's own pipeline: the supernet trained progressively (:data:`STAGES`), then
   regularized evolution scoring each sub-network on the weights it inherits, batch norm
   recalibrated (:func:`search_progressive`, with a small evaluator of the user's own).

Differences from the paper: synthetic 12-channel "features" instead of 80-band filter banks
of VoxCeleb, a classification loss instead of AAM-softmax speaker embeddings, plain TDNN
blocks instead of SE-Res2Blocks, dilation searched per layer (ECAPA-TDNN fixes 2, 3, 4), the
trunk width shared by the residual blocks, widths of 8 to 24 channels and 1 to 3 blocks; the
progressive stages make the dilation elastic with the kernel and the widths in one stage
(the paper: two), and the search is regularized evolution on the supernet's accuracy instead
of the paper's evolution guided by an accuracy predictor.

    python examples/tdnn_search.py
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nasforge
import nasforge.nn as nasnn
from nasforge.evaluators.base import Evaluator
from nasforge.train.trainer import seeded
from nasforge.train.user_data import TensorData, UserData
from nasforge.trial import Direction, Result

#: The echo lag (frames) of each speaker: class ``s`` repeats the first half of the channels
#: in the second half ``SPEAKER_LAGS[s]`` frames later. All odd, so an even dilation misses
#: them all.
SPEAKER_LAGS = (1, 3, 5, 7)

#: The choices of every layer (EfficientTDNN: kernels 1, 3, 5; depths 2-4).
KERNELS = (1, 3, 5)
DILATIONS = (1, 2, 3)
WIDTHS = (8, 16, 24)
DEPTHS = (1, 2, 3)

#: Training epochs of every network (Adam, learning rate 0.01, batches of 32).
EPOCHS = 6
#: What :func:`evaluate` returns and which way is better.
METRICS = {"valid_acc": "max", "test_acc": "max", "params_k": "min"}


# -- data --------------------------------------------------------------------------------------
def make_utterances(
    count: int,
    *,
    frames: int = 64,
    features: int = 12,
    lags: Sequence[int] = SPEAKER_LAGS,
    correlation: float = 0.6,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` synthetic utterances ``(features, frames)`` and their speakers.

    Each channel is white noise; for speaker ``s`` channel ``features // 2 + c`` is, with
    weight ``correlation``, channel ``c`` of ``lags[s]`` frames before (the rest is fresh
    noise, so every channel keeps unit variance). Speakers are balanced.
    """
    if features < 2 or frames <= max(lags):
        raise ValueError(f"need at least 2 features and more than {max(lags)} frames")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(count) % len(lags))[torch.randperm(count, generator=g)]
    pad = max(lags)
    noise = torch.randn(count, features, frames + pad, generator=g)
    half = features // 2
    x = noise.clone()
    for speaker, lag in enumerate(lags):
        rows = labels == speaker
        source = noise[rows, :half, pad - lag : pad - lag + frames]
        echo = noise[rows, half : 2 * half, pad:]
        x[rows, half : 2 * half, pad:] = correlation * source + (1 - correlation**2) ** 0.5 * echo
    return x[:, :, pad:].contiguous(), labels


def speaker_data(
    n_train: int = 320, n_valid: int = 160, n_test: int = 160, seed: int = 0, **kw: Any
) -> UserData:
    """Training, validation and test utterances: three independent draws of
    :func:`make_utterances` (the same speakers, new content), as ``nasforge``'s
    :class:`~nasforge.train.user_data.UserData`, which the one-shot search takes as it is."""
    return UserData(
        make_utterances(n_train, seed=3 * seed, **kw),
        make_utterances(n_valid, seed=3 * seed + 1, **kw),
        make_utterances(n_test, seed=3 * seed + 2, **kw),
        num_classes=len(kw.get("lags", SPEAKER_LAGS)),
    )


# -- the network: plain PyTorch, with nasforge.nn choices ---------------------------------------
class StatsPool(nn.Module):
    """Statistics pooling (Snyder et al., "X-vectors: Robust DNN Embeddings for Speaker
    Recognition", ICASSP 2018): ``(N, C, T) -> (N, 2C)``, the mean and
    the standard deviation of each channel over time, so utterances of any length give one
    vector."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1)
        std = (x.var(dim=-1, unbiased=False) + self.eps).sqrt()
        return torch.cat([mean, std], dim=1)


def dilated(conv: nn.Module, x: torch.Tensor, dilation: int) -> torch.Tensor:
    """``conv`` (stride 1, "same" padding, no dilation of its own) applied with its taps
    ``dilation`` frames apart: the frames are split into their ``dilation`` interleaved
    phases (frames ``p, p + d, p + 2d...``), each phase is convolved on its own and the
    outputs are interleaved back (the space-to-batch form of a dilated convolution). This
    equals ``conv`` built with ``dilation=d`` and padding ``d * (k - 1) / 2``, and works on
    nasforge's weight-sharing convolutions, whose kernel and width choices it keeps."""
    if dilation == 1:
        out: torch.Tensor = conv(x)
        return out
    n, c, t = x.shape
    m = -(-t // dilation)  # frames per phase; the tail padded with zeros, as "same" pads
    phases = F.pad(x, (0, m * dilation - t)).view(n, c, m, dilation)
    phases = phases.permute(0, 3, 1, 2).reshape(n * dilation, c, m)
    out = conv(phases)
    out = out.view(n, dilation, -1, m).permute(0, 2, 3, 1).reshape(n, -1, m * dilation)
    return out[..., :t]


class TDNNLayer(nn.Module):
    """A time-delay layer: a 1-D convolution over frames with ``kernel`` taps ``dilation``
    frames apart, centred ("same" padding: output frame ``t`` sees frames
    ``t - dilation * (kernel - 1) / 2 ... t + dilation * (kernel - 1) / 2``), then ReLU and
    batch norm (the x-vector and ECAPA-TDNN order).

    Channels, kernel and dilation are numbers or ``nasforge.nn.ValueChoice``. Built inside
    ``nasforge.nn.fixed`` (one architecture) ``conv`` is a plain ``torch.nn.Conv1d`` with its
    dilation. In the weight-sharing form the kernel and channel choices are
    ``nasforge.nn.Conv1d``'s (the smaller kernel the centre of the largest, the narrower
    layer the first channels) and the dilation choice spreads the same taps apart
    (:func:`dilated`): every dilation shares the kernel's weights.
    """

    def __init__(self, in_channels: Any, out_channels: Any, kernel: Any = 1, dilation: Any = 1):
        super().__init__()
        self.dilation = dilation
        if isinstance(dilation, nasnn.ValueChoice):  # elastic: dilated in forward
            dilation = 1
        self.conv = nasnn.Conv1d(
            in_channels, out_channels, kernel, dilation=dilation, padding="same"
        )
        self.norm = nasnn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = self.dilation
        if not isinstance(choice, nasnn.ValueChoice):
            out = self.conv(x)
        elif choice.current() is not None:  # one path (SPOS, GDAS)
            out = choice.site.gate(dilated(self.conv, x, choice.current()))
        else:  # dense mixture (DARTS): sum_o w_o conv_{d_o}(x)
            pairs = zip(choice.site.weights, choice.options, strict=True)
            out = sum(w * dilated(self.conv, x, d) for w, d in pairs)
        result: torch.Tensor = self.norm(F.relu(out))
        return result


class TDNNBlock(nn.Module):
    """A residual block: a TDNN layer from the trunk's ``width`` to its own ``hidden`` width
    with its own kernel and dilation, a 1x1 layer back to ``width``, plus the input."""

    def __init__(self, width: Any, hidden: Any, kernel: Any, dilation: Any) -> None:
        super().__init__()
        self.context = TDNNLayer(width, hidden, kernel, dilation)
        self.project = TDNNLayer(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.project(self.context(x))
        return out


class TDNN(nn.Module):
    """The search space: a frame layer, 1 to 3 residual blocks, a 1x1 aggregation layer,
    statistics pooling and a linear classifier. Decisions: ``width`` (the trunk, shared by
    the residual blocks), ``kernel0``/``dilation0`` (the frame layer), ``depth``, and per
    block ``i`` its ``width<i>`` (inner width), ``kernel<i>`` and ``dilation<i>``."""

    def __init__(
        self,
        features: int = 12,
        num_classes: int = len(SPEAKER_LAGS),
        *,
        kernels: Sequence[int] = KERNELS,
        dilations: Sequence[int] = DILATIONS,
        widths: Sequence[int] = WIDTHS,
        depths: Sequence[int] = DEPTHS,
        embedding: int = 32,
    ) -> None:
        super().__init__()
        width = nasnn.ValueChoice(list(widths), label="width")
        self.frame = TDNNLayer(
            features,
            width,
            nasnn.ValueChoice(list(kernels), label="kernel0"),
            nasnn.ValueChoice(list(dilations), label="dilation0"),
        )

        def block(i: int) -> nn.Module:
            return TDNNBlock(
                width,
                nasnn.ValueChoice(list(widths), label=f"width{i + 1}"),
                nasnn.ValueChoice(list(kernels), label=f"kernel{i + 1}"),
                nasnn.ValueChoice(list(dilations), label=f"dilation{i + 1}"),
            )

        self.blocks = nasnn.Repeat(block, nasnn.ValueChoice(list(depths), label="depth"))
        self.aggregate = TDNNLayer(width, embedding)
        self.pool = StatsPool()
        self.classifier = nn.Linear(2 * embedding, num_classes)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """The frame-level features ``(N, embedding, T)`` before pooling."""
        out: torch.Tensor = self.aggregate(self.blocks(self.frame(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.pool(self.frames(x)))
        return out


def receptive_field(values: Mapping[str, Any]) -> int:
    """Frames one output frame of :class:`TDNN` sees, for the decisions ``values``:
    ``1 + sum((kernel - 1) * dilation)`` over the frame layer and the blocks in use."""
    layers = range(int(values["depth"]) + 1)
    return 1 + sum((int(values[f"kernel{i}"]) - 1) * int(values[f"dilation{i}"]) for i in layers)


# -- training ----------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    data: UserData,
    *,
    epochs: int = EPOCHS,
    lr: float = 0.01,
    batch_size: int = 32,
    seed: int = 0,
    context: Any = None,
) -> dict[str, float]:
    """Train ``model`` with Adam and cross-entropy (batches in an order drawn from ``seed``)
    and return its validation and test accuracy (percent). With a ``nasforge.reporting.
    TrialContext``, the validation accuracy is reported after every epoch and training ends
    early (``TrialStopped``) when the study's stopping rule says so."""
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data.train.inputs, data.train.targets
    valid_acc = 0.0
    for epoch in range(epochs):
        model.train()
        for index in torch.randperm(len(x), generator=order).split(batch_size):
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        valid_acc = accuracy(model, data.valid)
        if context is not None:
            # raises nasforge.reporting.TrialStopped when the study's rule says stop
            context.report({"valid_acc": valid_acc}, step=epoch + 1, stop=True)
    metrics = {"valid_acc": valid_acc}
    if data.test is not None:
        metrics["test_acc"] = accuracy(model, data.test)
    return metrics


@torch.no_grad()
def accuracy(model: nn.Module, split: TensorData) -> float:
    """Top-1 accuracy (percent) of ``model`` in evaluation mode."""
    model.eval()
    hits = model(split.inputs).argmax(dim=1) == split.targets
    return 100.0 * float(hits.float().mean())


# -- the searches --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def default_data() -> UserData:
    """The utterances the example searches on (:func:`speaker_data`'s defaults)."""
    return speaker_data()


def evaluate(model: nn.Module, context: Any = None) -> dict[str, float]:
    """The user's training function as the ``function`` evaluator calls it, by its import
    path ``"tdnn_search:evaluate"`` (so a study records it and worker processes rebuild it):
    train for :data:`EPOCHS` epochs on the default utterances, reporting as it goes, and add
    the network's size (thousands of parameters)."""
    metrics = fit(model, default_data(), epochs=EPOCHS, context=context)
    metrics["params_k"] = sum(p.numel() for p in model.parameters()) / 1e3
    return metrics


def tdnn_space() -> Any:
    """:class:`TDNN` as a nasforge search space (named by import path, so that a study
    records it and another process rebuilds it)."""
    from nasforge.spaces.module import ModuleSpace

    return ModuleSpace(TDNN, name="tdnn_search:TDNN")


def search_evolution(
    trials: int = 16, *, seed: int = 0, strategy: str = "regularized-evolution"
) -> Any:
    """Black-box search: ``strategy`` proposes, :func:`evaluate` trains each proposal from
    scratch. Returns the study."""
    from nasforge.evaluators.function import FunctionEvaluator

    space = tdnn_space()
    evaluator = FunctionEvaluator("tdnn_search:evaluate", metrics=METRICS, space=space)
    params = None
    if strategy == "regularized-evolution":
        params = {"population_size": max(2, trials // 3), "tournament_size": max(2, trials // 8)}
    study = nasforge.create_study(
        space=space, strategy=strategy, strategy_params=params, seed=seed, evaluator=evaluator
    )
    study.optimize(evaluator, n_trials=trials)
    return study


def search_oneshot(
    method: str = "spos",
    *,
    epochs: int = 60,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> Any:
    """One-shot search of the elastic supernet nasforge builds from :class:`TDNN`: ``spos``
    trains one uniformly drawn path per step, then evolves candidates scored on the shared
    weights (each generation's best is recorded, trained from scratch by :func:`evaluate`);
    ``darts`` mixes every choice with architecture weights. Returns the one-shot result
    (``result.arch``, ``result.study``).

    SPOS's settings here: SGD at 0.1 (its default 0.025 left the supernet near chance after
    60 epochs of 5 steps), and batch norm recalibrated and candidates scored on all of each
    half (its default shares of the halves are 32 and 64 utterances here, too few to rank
    candidates)."""
    from nasforge.evaluators.function import FunctionEvaluator

    space = tdnn_space()
    evaluator = FunctionEvaluator("tdnn_search:evaluate", metrics=METRICS, space=space)
    if params is None and method == "spos":
        half = len(default_data().train) // 2  # the search halves: score on all of them
        params = {
            "lr": 0.1,
            "population": 16,
            "generations": 4,
            "top_k": 6,
            "mutation_prob": 0.2,
            "recal_images": half,
            "eval_images": half,
        }
    return nasforge.oneshot.search(
        method,
        default_data(),
        space=space,
        params=params,
        settings=nasforge.oneshot.SupernetSettings(batch_size=32),
        epochs=epochs,
        seed=seed,
        evaluator=evaluator,
        device="cpu",
        threads=threads,  # networks this small run fastest on one thread
    )


# -- EfficientTDNN's own pipeline: progressive training, then search on the shared weights --------
#: The stages of progressive training (EfficientTDNN, Section III-C): the largest network
#: first, then the kernel (here with the dilation), the depth and the widths made elastic in
#: turn; a stage draws each elastic decision uniformly and keeps the others at their largest.
STAGES: tuple[tuple[str, ...], ...] = (
    (),
    ("kernel", "dilation"),
    ("kernel", "dilation", "depth"),
    ("kernel", "dilation", "depth", "width"),
)


def train_progressively(
    data: UserData, *, epochs: int = 6, lr: float = 0.01, batch_size: int = 32, seed: int = 0
) -> Any:
    """The elastic supernet of :class:`TDNN` trained stage by stage (:data:`STAGES`),
    ``epochs`` epochs each, one sub-network drawn per batch. Returns the supernet
    (``nasforge.ops.module_supernet.ModuleSupernet``)."""
    space = tdnn_space()
    with seeded(seed):
        supernet = space.supernet(num_classes=data.num_classes)
    decisions = space.decisions()
    largest = [d.options.index(max(d.options)) for d in decisions]
    kinds = [d.name.rstrip("0123456789") for d in decisions]
    rng = np.random.default_rng(seed)
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(supernet.parameters(), lr=lr)
    x, y = data.train.inputs, data.train.targets
    supernet.train()
    for elastic in STAGES:
        for _ in range(epochs):
            for index in torch.randperm(len(x), generator=order).split(batch_size):
                path = [
                    [int(rng.integers(len(d.options))) if kind in elastic else top]
                    for d, kind, top in zip(decisions, kinds, largest, strict=True)
                ]
                loss = F.cross_entropy(supernet(x[index], None, path), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return supernet


@torch.no_grad()
def inherited_accuracy(supernet: Any, arch: Any, data: UserData) -> float:
    """Validation accuracy of ``arch`` with the weights it inherits from ``supernet``, its
    batch-norm statistics recomputed on the training utterances first (as weight-sharing
    searches score sub-networks)."""
    net = supernet.extract(arch)
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    net.train()
    for batch in data.train.inputs.split(64):
        net(batch)
    return accuracy(net, data.valid)


class SharedWeights(Evaluator):
    """Scores an architecture by :func:`inherited_accuracy` on a trained supernet: a small
    evaluator of the user's own, so that any black-box strategy searches the shared weights."""

    cost_unit = "seconds"

    def __init__(self, supernet: Any, data: UserData) -> None:
        self.supernet, self.data = supernet, data

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Any, fidelity: Mapping[str, Any] | None = None) -> Result:
        started = time.perf_counter()
        score = inherited_accuracy(self.supernet, arch, self.data)
        seconds = time.perf_counter() - started
        return Result({"valid_acc": score}, cost=seconds, seconds=seconds)


def search_progressive(trials: int = 48, *, epochs: int = 6, seed: int = 0) -> tuple[Any, Any]:
    """EfficientTDNN's pipeline: :func:`train_progressively`, then regularized evolution
    over sub-networks scored on the shared weights (:class:`SharedWeights`). Returns the
    supernet and the study."""
    supernet = train_progressively(default_data(), epochs=epochs, seed=seed)
    evaluator = SharedWeights(supernet, default_data())
    study = nasforge.create_study(
        space=supernet.space,
        strategy="regularized-evolution",
        strategy_params={"population_size": max(2, trials // 4), "tournament_size": 2},
        seed=seed,
        evaluator=evaluator,
    )
    study.optimize(evaluator, n_trials=trials)
    return supernet, study


# -- main --------------------------------------------------------------------------------------
def main(
    *,
    trials: int = 24,
    oneshot: str = "spos",
    oneshot_epochs: int = 60,
    progressive_epochs: int = 6,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Search :class:`TDNN` three ways and print (``verbose``) and return what each found:
    regularized evolution training ``trials`` networks from scratch; the one-shot method
    ``oneshot`` for ``oneshot_epochs`` supernet epochs; and EfficientTDNN's progressive
    supernet (``progressive_epochs`` per stage) searched by evolution on its shared weights.
    Every found network is trained from scratch by :func:`evaluate` for its accuracies."""
    data = default_data()
    out: dict[str, Any] = {}

    start = time.perf_counter()
    study = search_evolution(trials, seed=seed)
    best = study.best_trial
    out["regularized-evolution"] = {
        **dict(best.metrics),
        "arch": best.arch,
        "trials": len(study.trials),
        "seconds": time.perf_counter() - start,
    }

    start = time.perf_counter()
    result = search_oneshot(oneshot, epochs=oneshot_epochs, seed=seed)
    out[oneshot] = {
        **dict(result.study.trials[-1].metrics),
        "arch": result.arch,
        "trials": len(result.study.trials),
        "seconds": time.perf_counter() - start,
    }

    start = time.perf_counter()
    supernet, study = search_progressive(trials * 2, epochs=progressive_epochs, seed=seed)
    found = study.best_trial.arch
    with seeded(seed):
        retrained = supernet.space.build(found)
    out["progressive + evolution"] = {
        **evaluate(retrained),
        "supernet_acc": study.best_trial.metrics["valid_acc"],
        "arch": found,
        "trials": len(study.trials),
        "seconds": time.perf_counter() - start,
    }

    if verbose:
        x, speakers = data.train.inputs, len(SPEAKER_LAGS)
        print(
            f"{len(x)}/{len(data.valid)}/{len(data.test or ())} train/valid/test utterances of "
            f"{x.shape[2]} frames x {x.shape[1]} features, {speakers} speakers "
            f"(echo lags {SPEAKER_LAGS}); chance {100 / speakers:.0f}%"
        )
        space = tdnn_space()
        for name, found in out.items():
            values = space.values(found["arch"])
            print(
                f"{name:>24}: valid {found['valid_acc']:5.1f}  test {found['test_acc']:5.1f}  "
                f"{found['params_k']:4.1f}k params  receptive field "
                f"{receptive_field(values):2d}  {found['trials']:2d} trials  "
                f"{found['seconds']:5.1f} s\n{'':>26}{found['arch']}"
            )
    return out


if __name__ == "__main__":
    main()
