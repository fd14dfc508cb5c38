"""NAS-Bench-201 results for all 15,625 cells, shipped inside nasforge.

Sources (numbers only, no code; details, licences and caveats in ``tabular/data/README.md``):

* Dong, X. and Yang, Y. "NAS-Bench-201: Extending the Scope of Reproducible Neural
  Architecture Search." ICLR 2020, arXiv:2001.00326; and NATS-Bench (Dong et al., TPAMI 2021,
  arXiv:2009.00437): accuracies after 200 and 12 training epochs, MIT licence.
* Li, C. et al. "HW-NAS-Bench: Hardware-Aware Neural Architecture Search Benchmark." ICLR
  2021, arXiv:2103.10584: latency and energy on 6 devices per dataset, MIT licence.
* Lee, H. et al. "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
  Meta-Learning." NeurIPS 2021, arXiv:2106.08630: latency on further devices, MIT licence.

Protocol (as in the NAS-Bench-201 paper, Section 5): on ``cifar10`` a search sees
``valid_acc``, the validation accuracy of the network trained on the CIFAR-10 train split
(the benchmark's ``cifar10-valid`` setting), and ``test_acc`` is the test accuracy of the
network trained on train+valid (the ``cifar10`` setting). On ``cifar100`` and
``imagenet16-120`` ``valid_acc`` and ``test_acc`` are the two halves of the original test set
(``x-valid``, ``x-test``). All accuracies are means over the benchmark's training seeds.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from nasforge import tabular
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, UnknownNameError
from nasforge.tabular.base import MetricInfo, TabularBenchmark, load_table, row_lookup
from nasforge.trial import Direction

__all__ = ["NB201Benchmark"]

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
_PREFIX = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16"}
_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}
_N_OPS = 5
_POWERS = _N_OPS ** np.arange(5, -1, -1)

MAX, MIN = Direction.MAXIMIZE, Direction.MINIMIZE

# HW-NAS-Bench columns per dataset: (metric, column suffix, unit, what)
_HW = (
    ("latency_ms[edgegpu]", "edgegpu_latency", "ms", "NVIDIA Jetson TX2 (edge GPU) latency"),
    ("energy_mJ[edgegpu]", "edgegpu_energy", "mJ", "NVIDIA Jetson TX2 (edge GPU) energy"),
    ("latency_ms[raspi4]", "raspi4_latency", "ms", "Raspberry Pi 4 latency"),
    ("latency_ms[edgetpu]", "edgetpu_latency", "ms", "Google Edge TPU latency (missing for some)"),
    ("latency_ms[pixel3]", "pixel3_latency", "ms", "Google Pixel 3 latency"),
    ("latency_ms[eyeriss]", "eyeriss_latency", "ms", "Eyeriss ASIC latency"),
    ("energy_mJ[eyeriss]", "eyeriss_energy", "mJ", "Eyeriss ASIC energy"),
    (
        "arithmetic_intensity[eyeriss]",
        "eyeriss_arithmetic_intensity",
        "",
        "Eyeriss arithmetic intensity",
    ),
    ("latency_ms[fpga]", "fpga_latency", "ms", "FPGA (Xilinx ZC706) latency"),
    ("energy_mJ[fpga]", "fpga_energy", "mJ", "FPGA (Xilinx ZC706) energy"),
)


@tabular.register("nb201")
class NB201Benchmark(TabularBenchmark):
    """NAS-Bench-201 / NATS-Bench (topology) results, HW-NAS-Bench and HELP hardware costs.

    Datasets: ``cifar10``, ``cifar100``, ``imagenet16-120``. Fidelities: 200 epochs (the
    default) and 12 epochs. Metrics (list them with :meth:`metrics`): ``valid_acc``,
    ``test_acc``, ``train_acc`` (200 epochs only), ``params_M``, ``macs_M`` (multiply-accumulates
    of conv/linear layers: NAS-Bench-201's "FLOPs" without the classifier's bias adds),
    ``flops_M`` (``2 * macs_M``, the same quantity as everywhere in nasforge), HW-NAS-Bench
    ``latency_ms[device]`` / ``energy_mJ[device]`` for the dataset's input size, and HELP
    latencies ``latency_ms[device]`` of further devices.

    Example:
        >>> from nasforge import spaces
        >>> bench = NB201Benchmark()
        >>> arch = spaces.create("nb201").from_index(6111)
        >>> round(bench.query(arch, "cifar10", "valid_acc"), 3)
        91.607
        >>> round(bench.query(arch, "cifar10", "test_acc"), 3)
        94.373
    """

    name = "nb201"
    space = "nb201"
    datasets = DATASETS
    fidelities = (200, 12)

    def __init__(self) -> None:
        self._table = load_table("nb201")
        self._derived: dict[str, np.ndarray] = {}

    # -- metric catalogue -------------------------------------------------------------------
    @functools.cache  # noqa: B019 - one instance per process in practice
    def _columns(self, dataset: str, fidelity: int) -> dict[str, tuple[str, MetricInfo]]:
        p = _PREFIX[dataset]
        out: dict[str, tuple[str, MetricInfo]] = {}

        def add(metric: str, key: str, direction: Direction, unit: str, text: str) -> None:
            out[metric] = (key, MetricInfo(metric, direction, unit, text))

        if fidelity == 200:
            if dataset == "cifar10":
                add(
                    "valid_acc",
                    "acc/cifar10_valid_acc",
                    MAX,
                    "%",
                    "validation accuracy, model trained on the train split (cifar10-valid)",
                )
                add(
                    "test_acc",
                    "acc/cifar10_test_acc",
                    MAX,
                    "%",
                    "test accuracy, model trained on train+valid (cifar10; NATS-Bench)",
                )
                add(
                    "train_acc",
                    "acc/cifar10valid_train_acc",
                    MAX,
                    "%",
                    "final training accuracy (cifar10-valid)",
                )
                add(
                    "test_acc_train_split",
                    "acc/cifar10valid_test_acc",
                    MAX,
                    "%",
                    "test accuracy of the model trained on the train split only",
                )
            else:
                add("valid_acc", f"acc/{p}_valid_acc", MAX, "%", "accuracy on x-valid")
                add("test_acc", f"acc/{p}_test_acc", MAX, "%", "accuracy on x-test")
                add("train_acc", f"acc/{p}_train_acc", MAX, "%", "final training accuracy")
                add(
                    "test_acc_nats",
                    f"acc/{p}_test_acc_nats",
                    MAX,
                    "%",
                    "accuracy on x-test from the NATS-Bench release",
                )
        else:
            valid = "cifar10valid_valid_acc_12ep" if dataset == "cifar10" else f"{p}_valid_acc_12ep"
            add("valid_acc", f"acc/{valid}", MAX, "%", "validation accuracy after 12 epochs")
            add("test_acc", f"acc/{p}_test_acc_12ep", MAX, "%", "test accuracy after 12 epochs")
        add("params_M", f"acc/params_M_{p}", MIN, "M", "parameters, millions")
        add(
            "flops_M",
            f"derived/flops_M_{p}",
            MIN,
            "M",
            "floating-point operations of conv/linear layers, millions: 2 x macs_M, as "
            "nasforge.hardware, the train evaluator and nasforge profile count them",
        )
        add(
            "macs_M",
            f"derived/macs_M_{p}",
            MIN,
            "M",
            "multiply-accumulates of conv/linear layers, millions (what NAS-Bench-201 and "
            "most NAS papers call FLOPs, less the classifier's bias additions)",
        )
        for metric, suffix, unit, text in _HW:
            add(metric, f"hw/{p}_{suffix}", MIN, unit, f"{text} (HW-NAS-Bench, {dataset} input)")
        for key in self._table:
            if key.startswith("help/"):
                device = key.removeprefix("help/")
                add(
                    f"latency_ms[{device}]",
                    key,
                    MIN,
                    "ms",
                    f"{device} latency (HELP measurements; batch size after the last '_')",
                )
        return out

    def _resolve(self, dataset: str, fidelity: int | None) -> tuple[str, int]:
        key = dataset.lower() if isinstance(dataset, str) else dataset
        if key not in _PREFIX:
            raise UnknownNameError("NB201 dataset", str(dataset), DATASETS)
        fid = 200 if fidelity is None else fidelity
        if fid not in self.fidelities:
            raise UnknownNameError(
                "NB201 fidelity (training epochs)", str(fidelity), [str(f) for f in self.fidelities]
            )
        return key, int(fid)

    def metrics(self, dataset: str, fidelity: int | None = None) -> list[MetricInfo]:
        return [info for _, info in self._columns(*self._resolve(dataset, fidelity)).values()]

    def _array(self, key: str) -> np.ndarray:
        """A stored column, or a derived one (``derived/macs_M_<prefix>``,
        ``derived/flops_M_<prefix>``), cached. The release's ``flops_M`` column counts
        multiply-accumulates plus one addition per classifier output; nasforge's ``flops_M``
        is everywhere ``2 * macs_M``."""
        if not key.startswith("derived/"):
            return self._table[key]
        array = self._derived.get(key)
        if array is None:
            metric, prefix = key.removeprefix("derived/").split("_M_")
            classes = _CLASSES[prefix]
            macs = np.round(self._table[f"acc/flops_M_{prefix}"] - classes / 1e6, 6)
            array = macs if metric == "macs" else np.round(2 * macs, 6)
            array.setflags(write=False)
            self._derived[key] = array
        return array

    def devices(self) -> list[str]:
        """Names usable in ``latency_ms[...]``."""
        cols = self._columns("cifar10", 200)
        return sorted(m[len("latency_ms[") : -1] for m in cols if m.startswith("latency_ms["))

    # -- queries ----------------------------------------------------------------------------
    def row(self, arch: Architecture) -> int:
        """The benchmark index of ``arch``."""
        if not isinstance(arch, Architecture) or arch.space != self.space:
            raise InvalidArchitectureError(
                f"NB201 benchmark answers for NB201 cells only, got {arch!r}."
            )
        return int(row_lookup("nb201", _N_OPS)[1][int(np.dot(arch.choices, _POWERS))])

    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray:
        columns = self._columns(*self._resolve(dataset, fidelity))
        if metric not in columns:
            raise UnknownNameError(f"metric of NB201 {dataset}", metric, columns)
        return self._array(columns[metric][0])

    def query(
        self, arch: Architecture, dataset: str, metric: str, fidelity: int | None = None
    ) -> float:
        return float(self.column(dataset, metric, fidelity)[self.row(arch)])

    def query_all(
        self, arch: Architecture, dataset: str, fidelity: int | None = None
    ) -> dict[str, float]:
        row = self.row(arch)
        columns = self._columns(*self._resolve(dataset, fidelity))
        out = {}
        for metric, (key, _) in columns.items():
            value = float(self._array(key)[row])
            if not math.isnan(value):
                out[metric] = value
        return out
