"""Per-layer latency lookup tables measured on a device: one entry per layer description.

A network of a macro space (``mobilenet``, ``fbnet``) is a sequence of layers, each fully
described by a ``LayerSpec`` (kind, channels, kernel, expansion, stride, squeeze-and-
excitation, activation, groups and input resolution; its ``key``). Its latency is predicted as

    LAT(net) ≈ fixed + Σ_layers T[spec.key]

where ``T`` holds the latency of each layer measured alone, on an input of its shape, and
``fixed`` is what a whole network costs beyond its layers. This is the table of ProxylessNAS
(Cai et al., "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware",
ICLR 2019, arXiv:1812.00332, Sec. 3.3), FBNet (Wu et al., "FBNet: Hardware-Aware Efficient
ConvNet Design via Differentiable Neural Architecture Search", CVPR 2019, arXiv:1812.03443,
Sec. 3.2), Single-Path NAS (Stamoulis et al., "Single-Path NAS: Designing Hardware-Efficient
ConvNets in less than 4 Hours", ECML-PKDD 2019, arXiv:1904.02877, Sec. 3.3) and HURRICANE
(Zhang et al., "Fast Hardware-Aware Neural Architecture Search", CVPRW 2020, arXiv:1910.11609):
each measures every candidate block at every layer shape of its space on the target device.
Where they differ from this module: FBNet and ProxylessNAS index the table by layer position and
operation, since their macro-architecture fixes the shape of each position; here the key is the
layer's whole description, so one table serves any width, depth and resolution that produces
the same layers, and two positions with the same shape share an entry.

**Transformer layers.** A vision transformer or a decoder-only language model is a sequence
of :class:`~nasforge.ops.vit.TransformerLayerSpec` too (patch or token embedding, one entry per
encoder block, spatial reductions, classifier or vocabulary head), each keyed by its kind,
width, tokens, heads, Q-K-V dimension and MLP width, so a table spans heads x dimensions x
sequence length and the same prediction applies: each block measured alone on an input of
its shape (``spec.input_shape``: ``(tokens, width)``; random token ids, ``int64``, for a
token embedding). HAT (Wang et al., "HAT: Hardware-Aware Transformers for Efficient Natural
Language Processing", ACL 2020, arXiv:2005.14187, Sec. 3) measures sub-transformers on the
target device to train a learned latency predictor over the layer settings; here the
per-layer table of the convolutional papers above is kept for transformers as well, as the
issue asks, so that one table and one calibration serve both kinds of space. The encoder
block's attention is built of explicit matrix products, which ONNX Runtime runs as exported.

One difference matters for them: a small transformer layer takes tens of microseconds, and
each layer timed alone pays one call of the runtime (about 6 us with ONNX Runtime on this
project's machine, the fixed part below), which a network pays once for all its layers. So
``measure_table(..., subtract_call=True)`` takes the fixed part off each layer's time alone
before the in-network factor is fitted and applied. On ``vit-cifar`` (32x32, 81 distinct
layers measured alone; 10 random networks to calibrate, 20 others predicted, 10th percentile
of 20 passes, one thread, machine load about 4) it brought ONNX Runtime's mean absolute error
from 8.3% to 4.5% (Spearman 0.997 to 0.999) and left PyTorch's as it was (8.9% and 8.7%);
``mobilenet``'s layers at 224x224 take about a millisecond, against which 0.02 ms is small,
and the default (``False``) keeps the times alone as they were measured.

**The fixed part and the in-network factor.** A whole network is one call of the runtime:
the fixed part is what that call costs without any layer, measured as the latency of an
empty network (``nn.Identity``) on the network's input (about 0.02 ms with ONNX Runtime, which
takes the input from numpy, and 0.001 ms with PyTorch eager on this project's machine). The
papers add nothing for it (ProxylessNAS, FBNet) or a constant (Single-Path NAS's runtime
model has a bias term). A layer measured alone, moreover, runs again and again on the same
input with its weights in the processor's caches; inside a network its weights were evicted
by the other layers and its input was just written by the previous one. On that 2-core
machine, whole random ``mobilenet`` networks at 224x224 took 1.2 to 1.4 times the sum of
their layers alone with PyTorch eager, and 0.95 to 1.15 times with ONNX Runtime. So
:func:`~nasforge.hardware.layer_measure.measure_table` also times a few whole networks
(``calibration``, by default 5 drawn from the space; judge the table on other networks) and
takes the *in-network factor* as the median over them of
``(measured - fixed) / Σ alone``, and stores ``factor · alone`` as each layer's entry. A
prediction stays the sum of the entries plus the fixed part (what ProxylessNAS's and FBNet's
expected-latency losses need), each entry is the time the layer adds inside a network, and
:attr:`LayerLatencyTable.factor` records the factor (1: the entries are the times measured
alone, as in a table filled by hand). A median, so that one network delayed by another job
on the machine does not move it; a factor rather than a fitted intercept, because on 300
draws of 5 calibration networks out of 30 measured ones (CPU time of the measuring thread, on
the shared machine) it predicted the other 25 as well as an intercept for ONNX Runtime (mean
absolute error 3.2% against 3.1%) and better for PyTorch (3.5% against 4.9%), and better than
a least-squares or Theil-Sen line through both (3.9 to 4.5%). With ``calibration=0`` the
factor is 1 and the fixed part 0 (the sum of the layers alone, as ProxylessNAS and FBNet
predict).

**The CSV.** :meth:`LayerLatencyTable.to_csv` writes one row per layer plus one row with key
``fixed``; its first lines (starting with ``#``) document the columns. Columns: ``device``
(a name of the device, ``cpu`` for this machine), ``backend`` (the runtime: ``torch``,
``onnxruntime`` or a label of your own), ``threads``, ``batch_size``, ``key`` (``LayerSpec.key``,
what a lookup matches), the layer's fields (``kind``, ``in_channels``, ``out_channels``,
``kernel``, ``expansion``, ``stride``, ``se``, ``act``, ``groups``, ``resolution``, then a
transformer layer's ``embed``, ``seq``, ``heads``, ``qkv``, ``mlp``, ``out``, ``patch``,
``causal``, ``conv_stem`` where the table has such layers, and any other field of the spec,
for reading; empty on the ``fixed`` row), ``factor`` (the in-network
factor the times measured alone were multiplied by; 1 when absent) and ``latency_ms``. To
fill a table from another device, write the rows (:func:`write_template` writes them with
``latency_ms`` empty) and put the median time of each layer there, measured alone at batch
size 1.
Only ``backend``, ``threads``, ``batch_size``, ``key`` and ``latency_ms`` are required.

Reading, writing and predicting need no PyTorch; measuring is in
:mod:`nasforge.hardware.layer_measure`.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Spec:
    ...     kind: str
    ...     out_channels: int
    ...     @property
    ...     def key(self):
    ...         return f"{self.kind}-{self.out_channels}"
    >>> table = LayerLatencyTable({"conv-16": 1.5, "conv-32": 2.5}, fixed_ms=0.25,
    ...                           backend="onnxruntime")
    >>> table.name, table.metric
    ('cpu-onnxruntime-lut', 'latency_ms[cpu-onnxruntime-lut]')
    >>> table.predict([Spec("conv", 16), Spec("conv", 32), Spec("conv", 32)])
    6.75
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = [
    "FIXED_KEY",
    "LAYER_FIELDS",
    "REQUIRED_COLUMNS",
    "TRANSFORMER_FIELDS",
    "LayerLatencyTable",
    "describe_layer",
    "distinct_layers",
    "input_shape",
    "layer_key",
    "spec_fields",
    "token_vocabulary",
    "write_template",
]

#: Key of the row that holds the fixed part.
FIXED_KEY = "fixed"
#: Layer fields written in this order (a spec's other fields follow, sorted).
LAYER_FIELDS: tuple[str, ...] = (
    "kind",
    "in_channels",
    "out_channels",
    "kernel",
    "expansion",
    "stride",
    "se",
    "act",
    "groups",
    "resolution",
)
#: Fields of a transformer layer (:class:`~nasforge.ops.vit.TransformerLayerSpec`), written in
#: this order after :data:`LAYER_FIELDS`.
TRANSFORMER_FIELDS: tuple[str, ...] = (
    "embed",
    "seq",
    "heads",
    "qkv",
    "mlp",
    "out",
    "patch",
    "causal",
    "conv_stem",
)
#: Columns a CSV must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("backend", "threads", "batch_size", "key", "latency_ms")
_META = ("device", "backend", "threads", "batch_size", "factor")
_LABEL = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


@dataclass(frozen=True)
class LayerLatencyTable:
    """Latency of each layer (by ``LayerSpec.key``) on one device and runtime, plus a fixed part.

    Attributes:
        entries: ``{key: milliseconds}``: what each layer adds to a network's latency, its
            time measured alone times :attr:`factor` (read-only).
        fixed_ms: What a whole network costs beyond the sum of its entries (may be negative;
            see the module docstring).
        backend: The runtime (``"torch"``, ``"onnxruntime"``, or a label of your own).
        threads: Intra-op threads the times were measured with.
        batch_size: Samples per pass (1 in the papers' tables).
        device: Name of the device (``"cpu"`` for this machine).
        layers: ``{key: {field: text}}``, the description of each entry (for the CSV and
            messages; may be empty for an entry).
        factor: The in-network factor the times measured alone were multiplied by (1: the
            entries are those times).
        source: The CSV file the table was read from, if any.
    """

    entries: Mapping[str, float]
    fixed_ms: float
    backend: str
    threads: int = 1
    batch_size: int = 1
    device: str = "cpu"
    layers: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    factor: float = 1.0
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for label, text in (("backend", self.backend), ("device", self.device)):
            if not isinstance(text, str) or not _LABEL.match(text):
                raise InvalidConfigError(
                    f"A latency table's {label} must be a name of letters, digits, '.', '-' "
                    f"or '_', got {text!r}."
                )
        for label, count in (("threads", self.threads), ("batch_size", self.batch_size)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InvalidConfigError(f"{label} must be an integer >= 1, got {count!r}.")
        if not math.isfinite(self.fixed_ms):
            raise InvalidConfigError(f"fixed_ms must be finite, got {self.fixed_ms!r}.")
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise InvalidConfigError(f"factor must be a number > 0, got {self.factor!r}.")
        entries = {}
        for key, value in self.entries.items():
            ms = float(value)
            if not (math.isfinite(ms) and ms >= 0) or key == FIXED_KEY:
                raise InvalidConfigError(
                    f"Latency table entry {key!r} = {value!r}: entries are finite times >= 0 "
                    f"in ms, and {FIXED_KEY!r} is the key of the fixed part (fixed_ms)."
                )
            entries[str(key)] = ms
        layers = {k: MappingProxyType(dict(v)) for k, v in self.layers.items() if k in entries}
        object.__setattr__(self, "entries", MappingProxyType(entries))
        object.__setattr__(self, "layers", MappingProxyType(layers))
        object.__setattr__(self, "fixed_ms", float(self.fixed_ms))
        object.__setattr__(self, "factor", float(self.factor))

    # -- names ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The device name of the table in metrics: ``cpu-onnxruntime-lut`` (``_<batch>`` added
        for a batch size other than 1, as :func:`nasforge.hardware.latency_metric_name`)."""
        suffix = "" if self.batch_size == 1 else f"_{self.batch_size}"
        return f"{self.device}-{self.backend}-lut{suffix}"

    @property
    def metric(self) -> str:
        """The metric of its predictions: ``latency_ms[cpu-onnxruntime-lut]``."""
        return f"latency_ms[{self.name}]"

    # -- look-ups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, spec: object) -> bool:
        key = spec if isinstance(spec, str) else getattr(spec, "key", None)
        return key in self.entries

    def latency(self, spec: Any, *, position: int | None = None) -> float:
        """The entry of one layer.

        Raises:
            InvalidConfigError: The table has no entry for it (the message names the layer,
                its position when given, and how to measure it).
        """
        key = layer_key(spec)
        try:
            return self.entries[key]
        except KeyError:
            where = "" if position is None else f" (layer {position} of the network)"
            raise InvalidConfigError(
                f"Latency table {self.name!r}{self._from()} has no entry for the layer "
                f"{describe_layer(spec)}{where}, key {key!r}. Measure the missing layers into "
                f"it: nasforge.hardware.measure_table(space, [arch], backend={self.backend!r}, "
                f"threads={self.threads}, calibration=0, table=<this table>), or add a row "
                "with that key to the CSV."
            ) from None

    def layer_latencies(self, specs: Iterable[Any]) -> list[float]:
        """The entry of each layer of a network, in order."""
        return [self.latency(spec, position=i) for i, spec in enumerate(specs)]

    def predict(self, specs: Iterable[Any]) -> float:
        """Predicted latency of a network given as its layers: ``fixed_ms + Σ entries``."""
        return self.fixed_ms + math.fsum(self.layer_latencies(specs))

    def missing(self, specs: Iterable[Any]) -> list[Any]:
        """The distinct layers of ``specs`` the table has no entry for, in order."""
        seen: dict[str, Any] = {}
        for spec in specs:
            key = layer_key(spec)
            if key not in self.entries and key not in seen:
                seen[key] = spec
        return list(seen.values())

    def merge(self, other: LayerLatencyTable) -> LayerLatencyTable:
        """The entries of both (``other``'s where both have one) and ``other``'s fixed part.

        Raises:
            InvalidConfigError: The tables were measured on another device, runtime, thread
                count or batch size, or calibrated with another in-network factor.
        """
        mine = {m: getattr(self, m) for m in _META}
        theirs = {m: getattr(other, m) for m in _META}
        if mine != theirs:
            raise InvalidConfigError(
                f"Cannot merge latency tables measured differently: {mine} and {theirs}."
            )
        return dataclasses.replace(
            self,
            entries={**self.entries, **other.entries},
            layers={**self.layers, **other.layers},
            fixed_ms=other.fixed_ms,
            source=None,
        )

    def _from(self) -> str:
        return "" if self.source is None else f" (read from {self.source})"

    # -- CSV -----------------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> Path:
        """Write the table as a documented CSV (see the module docstring); returns ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_csv_text(self._rows()), encoding="utf-8")
        return target

    def _rows(self) -> list[dict[str, Any]]:
        meta = {m: getattr(self, m) for m in _META}
        rows = [{**meta, "key": FIXED_KEY, "kind": FIXED_KEY, "latency_ms": repr(self.fixed_ms)}]
        for key in sorted(self.entries):
            described = dict(self.layers.get(key, {}))
            rows.append({**meta, **described, "key": key, "latency_ms": repr(self.entries[key])})
        return rows

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        backend: str | None = None,
        threads: int | None = None,
        device: str | None = None,
    ) -> LayerLatencyTable:
        """Read a table written by :meth:`to_csv` or filled by hand.

        Args:
            path: The CSV file (lines starting with ``#`` are comments).
            backend, threads, device: Keep only the rows measured so, when the file holds
                several tables.

        Raises:
            InvalidConfigError: The file is missing, lacks required columns (named), holds
                several tables and no filter picks one, a value is not a number, a row has no
                time, or the ``fixed`` row is missing.
        """
        source = Path(path)
        if not source.is_file():
            raise InvalidConfigError(f"No latency table at {str(source)!r}: the file is missing.")
        lines = source.read_text(encoding="utf-8-sig").splitlines()  # a spreadsheet's BOM
        body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(body)))
        columns = [c.strip() for c in (reader.fieldnames or [])]
        absent = [c for c in REQUIRED_COLUMNS if c not in columns]
        if absent:
            raise InvalidConfigError(
                f"Latency table {str(source)!r} lacks the column(s) {absent}; a table needs "
                f"{list(REQUIRED_COLUMNS)} (and optionally 'device', 'factor' and the layer "
                f"fields {list(LAYER_FIELDS)}). Columns found: {columns}."
            )
        rows = []
        for number, raw in enumerate(reader, start=2):
            row = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            row["device"] = row.get("device") or "cpu"
            row["factor"] = row.get("factor") or "1"
            row["_line"] = str(number)
            rows.append(row)
        wanted = {"backend": backend, "threads": threads, "device": device}
        for name, value in wanted.items():
            if value is not None:
                rows = [r for r in rows if r[name] == str(value)]
        groups = sorted({tuple(r[m] for m in _META) for r in rows})
        if len(groups) != 1:
            found = "no rows" if not groups else f"{len(groups)} tables {groups}"
            raise InvalidConfigError(
                f"Latency table {str(source)!r} holds {found} {_META} after filtering by "
                f"{wanted}; pick one with backend=, threads= and device=."
            )
        dev, back, thr, batch, factor = groups[0]
        entries: dict[str, float] = {}
        layers: dict[str, dict[str, str]] = {}
        fixed: float | None = None
        for row in rows:
            ms = _number(row["latency_ms"], f"latency_ms of {row['key']!r}", source, row)
            if row["key"] == FIXED_KEY:
                fixed = ms
                continue
            if not row["key"]:
                raise InvalidConfigError(f"{source} line {row['_line']}: the key is empty.")
            entries[row["key"]] = ms
            skip = {*REQUIRED_COLUMNS, *_META, "_line"}
            layers[row["key"]] = {k: v for k, v in row.items() if k not in skip and v != ""}
        if fixed is None:
            raise InvalidConfigError(
                f"Latency table {str(source)!r} has no row with key {FIXED_KEY!r}: add one "
                "with the time a whole network takes beyond its layers (0 if unknown)."
            )
        return cls(
            entries=entries,
            fixed_ms=fixed,
            backend=back,
            threads=int(_number(thr, "threads", source)),
            batch_size=int(_number(batch, "batch_size", source)),
            device=dev,
            layers=layers,
            factor=_number(factor, "factor", source),
            source=str(source),
        )


def write_template(
    path: str | Path,
    specs: Iterable[Any],
    *,
    backend: str,
    threads: int = 1,
    batch_size: int = 1,
    device: str = "cpu",
) -> Path:
    """Write the CSV of a table for ``specs`` with ``latency_ms`` empty, for filling from a
    device of your own (one row per distinct layer, plus the ``fixed`` row)."""
    meta = {"device": device, "backend": backend, "threads": threads, "batch_size": batch_size}
    rows: dict[str, dict[str, Any]] = {FIXED_KEY: {**meta, "key": FIXED_KEY, "kind": FIXED_KEY}}
    for spec in specs:
        rows.setdefault(layer_key(spec), {**meta, **spec_fields(spec), "key": layer_key(spec)})
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_csv_text(list(rows.values())), encoding="utf-8")
    return target


# -- layers -------------------------------------------------------------------------------------
def layer_key(spec: Any) -> str:
    """``spec.key`` (a string), or a clear error for something that is not a layer spec."""
    key = spec if isinstance(spec, str) else getattr(spec, "key", None)
    if not isinstance(key, str) or not key:
        raise InvalidConfigError(
            "Expected a layer description with a 'key' (nasforge.ops.mobile.LayerSpec or "
            f"nasforge.ops.vit.TransformerLayerSpec), got {spec!r}."
        )
    return key


def spec_fields(spec: Any) -> dict[str, str]:
    """The fields of a layer spec as text, in :data:`LAYER_FIELDS` order then the others."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    else:
        values = {k: v for k, v in vars(spec).items() if not k.startswith("_")}
    known = (*LAYER_FIELDS, *TRANSFORMER_FIELDS)
    ordered = [k for k in known if k in values] + sorted(set(values) - set(known))
    return {k: str(values[k]) for k in ordered if k != "key"}


def describe_layer(spec: Any) -> str:
    """A short readable description: ``mbconv(in_channels=16, out_channels=24, ...)``."""
    if isinstance(spec, str):
        return repr(spec)
    fields = spec_fields(spec)
    kind = fields.pop("kind", type(spec).__name__)
    return f"{kind}({', '.join(f'{k}={v}' for k, v in fields.items())})"


def input_shape(spec: Any) -> tuple[int, ...]:
    """The input of one sample of a layer: ``spec.input_shape`` where the spec has one (a
    :class:`~nasforge.ops.vit.TransformerLayerSpec`: ``(tokens, width)``, ``(C, H, W)`` for a
    patch embedding, ``(tokens,)`` token ids for a token embedding), else
    ``(in_channels, resolution, resolution)``."""
    shape = getattr(spec, "input_shape", None)
    if shape is not None:
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            dims = ()
        if not dims or min(dims) < 1:
            raise InvalidConfigError(
                f"Layer {describe_layer(spec)} has input_shape {shape!r}; expected a tuple of "
                "positive integers (one sample, without the batch dimension)."
            )
        return dims
    try:
        return (int(spec.in_channels), int(spec.resolution), int(spec.resolution))
    except AttributeError as err:
        raise InvalidConfigError(
            f"Layer {describe_layer(spec)} has no input_shape, nor in_channels and resolution, "
            "so its input shape is unknown."
        ) from err


def token_vocabulary(spec: Any) -> int | None:
    """The vocabulary of a layer whose input is token ids (kind ``token_embed``: its ``out``),
    so that it is timed on random ids in ``[0, vocabulary)``; ``None`` for a layer that takes
    real-valued tensors."""
    if getattr(spec, "kind", None) != "token_embed":
        return None
    vocab = getattr(spec, "out", None)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise InvalidConfigError(
            f"Token embedding {describe_layer(spec)} needs its vocabulary size in 'out' "
            f"(an integer >= 1), got {vocab!r}."
        )
    return vocab


def distinct_layers(specs: Iterable[Any]) -> list[Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        out.setdefault(layer_key(spec), spec)
    return list(out.values())


def _number(text: str, what: str, source: Path, row: Mapping[str, str] | None = None) -> float:
    where = "" if row is None else f" line {row['_line']}"
    try:
        value = float(text)
    except ValueError:
        hint = " (measure it, or delete the row)" if text == "" else ""
        raise InvalidConfigError(
            f"{source}{where}: {what} must be a number, got {text!r}{hint}."
        ) from None
    return value


_DOC = """\
# nasforge per-layer latency table (nasforge.hardware.layer_lut). One row per layer: its time
# measured alone at batch_size (median of timed passes after warm-up) times factor; one row
# with key 'fixed': the time a whole network takes beyond the sum of its layers (may be < 0).
# Predicted latency of a network = fixed + sum over its layers of latency_ms[key].
# Columns: device = name of the device; backend = runtime (torch, onnxruntime, or your own);
# threads = intra-op threads; batch_size = samples per pass; factor = the in-network factor
# the times measured alone were multiplied by (1 if absent); key = LayerSpec.key (what a
# lookup matches); kind .. resolution, embed .. conv_stem (+ other fields) = the layer, to read;
# latency_ms = milliseconds. Required: backend, threads, batch_size, key, latency_ms.
"""


def _csv_text(rows: list[dict[str, Any]]) -> str:
    used = {k for r in rows for k in r}
    transformer = [k for k in TRANSFORMER_FIELDS if k in used]
    known = {*_META, "key", *LAYER_FIELDS, *TRANSFORMER_FIELDS, "latency_ms"}
    columns = [*_META, "key", *LAYER_FIELDS, *transformer, *sorted(used - known), "latency_ms"]
    buffer = io.StringIO()
    buffer.write(_DOC)
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
