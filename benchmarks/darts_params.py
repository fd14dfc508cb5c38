"""Parameters and multiply-accumulates of the published DARTS-space genotypes.

Builds the DARTS evaluation network (``nasforge.spaces.create("darts").build``) of each named
genotype (darts-v1, darts-v2, pc-darts, gdas) and prints:

* its parameters with and without the auxiliary head (the papers count them without it, as
  DARTS' ``count_parameters_in_MB`` skips the names containing "auxiliary"), next to the count
  the papers report;
* its multiply-accumulates on one 3x32x32 image in evaluation mode (so without the auxiliary
  head), counted with ``torch.utils.flop_counter`` (convolutions and linear layers, 2 FLOPs per
  multiply-accumulate; pooling, batch norm, ReLU and additions are not counted).

The networks are built on PyTorch's meta device by default (shapes only, no arithmetic); the
counts do not depend on the device.

Usage: python benchmarks/darts_params.py [--channels 36] [--layers 20] [--device meta]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=36, help="C, first-stage width")
    parser.add_argument("--layers", type=int, default=20, help="number of cells")
    parser.add_argument("--device", default="meta", help="where to build (meta, cpu, cuda)")
    opts = parser.parse_args()

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import nasforge
    from nasforge.spaces.darts import GENOTYPES, PUBLISHED_PARAMS_M, DartsSpace

    space = nasforge.spaces.create("darts")
    assert isinstance(space, DartsSpace)
    print(
        f"settings: channels={opts.channels}, layers={opts.layers}, auxiliary head built, "
        f"input 1x3x32x32, eval mode, device={opts.device}, torch {torch.__version__}"
    )
    header = (
        f"{'genotype':10s} {'params':>10s} {'params+aux':>11s} {'params (M)':>10s} "
        f"{'published':>9s} {'MACs (M)':>9s}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for name in GENOTYPES:
        with torch.device(opts.device):
            net = space.build(space.named(name), channels=opts.channels, layers=opts.layers)
            net.eval()
            total = sum(p.numel() for p in net.parameters())
            main_params = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                net(torch.zeros(1, 3, 32, 32))
        macs = counter.get_total_flops() / 2
        print(
            f"{name:10s} {main_params:10,d} {total:11,d} {main_params / 1e6:10.2f} "
            f"{PUBLISHED_PARAMS_M[name]:8.1f}M {macs / 1e6:9.1f}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
