"""What the ProxylessNAS and FBNet tests share: the small CIFAR-size supernet setting and a
made-up per-layer latency table of its layers."""

from __future__ import annotations

from typing import Any

from nasforge import spaces
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.oneshot import SupernetSettings

SMALL = {"width_mult": 0.25, "resolution": 32, "stem_stride": 1, "first_stride": 1}
SETTINGS = SupernetSettings(resolution=32, batch_size=16, options=SMALL)


def table_for(space_name: str, skip: Any = ()) -> tuple[Any, LayerLatencyTable]:
    """A deterministic per-layer table of every layer of the small supernet (no timing)."""
    net = spaces.create(space_name).supernet(num_classes=4, **SMALL)
    entries = {
        s.key: 1e-6 * s.kernel**2 * s.expansion * (s.in_channels + s.out_channels) * s.resolution**2
        + 0.01
        for s in net.all_specs()
        if s.key not in skip
    }
    return net, LayerLatencyTable(entries, fixed_ms=0.25, backend="torch")
