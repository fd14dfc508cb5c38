"""Memory and time of one search step at the standard NAS-Bench-201 supernet shape.

Shape: 16 channels, 5 cells per stage, 32x32 CIFAR-sized inputs, batch 64, 10 classes (the
search-time network of NAS-Bench-201). Each configuration runs in a fresh process (spawn) so
that its peak resident memory is its own. A search step of the differentiable methods is two
updates, measured apart, each as the method runs it:

* ``weight``: forward with the architecture weights detached, backward, SGD update of the
  supernet's weights (the fixed network's training step is this step);
* ``arch``: forward with the architecture weights live, gradient of the loss to the
  architecture parameters only (``torch.autograd.grad``), Adam update (DARTS first order,
  PC-DARTS, GDAS; SPOS has no architecture step).

Figures per configuration and step:

* ``saved MB``: bytes of the tensors autograd keeps for the backward pass (unique storages,
  counted with ``torch.autograd.graph.saved_tensors_hooks``): the memory a step needs beyond
  the weights, the quantity PC-DARTS reduces. A method's peak is the larger of its two steps
  (the architecture step keeps the operations' outputs for the gradient to their weights).
  ``--by-module`` splits it by the part of the network that saved it (stem, mixed edges,
  the rest of the cells, residual reductions, head);
* ``peak RSS +MB``: growth of the process's peak resident memory over the first step of each
  kind (after the model is built, weight step first), from ``resource.getrusage``; CPU only,
  allocator slack included; the peak is monotone, so the arch row shows only what the
  architecture step added, and the PC-DARTS / DARTS line compares the growth over both;
* ``ms``: median wall time of a step over ``--steps`` steps after ``--warmup``, on
  ``--threads`` CPU threads (or the GPU).

``--repeats R`` measures every configuration R times, interleaved, and reports the median
of the per-round ratios to the fixed network (the machine may be shared: ratios within one
round are what counts).

Targets (issue 8): PC-DARTS peak memory at most 1/3 of DARTS's; a supernet step at most 2.5x
the step of the fixed all-``nor_conv_3x3`` network.

Run:  nice python benchmarks/oneshot_memory_speed.py [--repeats 3] [--by-module] [--device cuda]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time

CONFIGS = ("fixed-conv3x3", "darts", "pc-darts", "gdas", "spos")
PARTS = ("stem", "mixed edges", "cell other", "reductions", "head")


def _measure(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    import torch

    from nasforge.oneshot.gdas import gumbel_hard
    from nasforge.ops.nb201 import NB201Network, ResidualReduction
    from nasforge.ops.supernet import MixedEdge, NB201Supernet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if name == "fixed-conv3x3":
        net: torch.nn.Module = NB201Network((3,) * 6, channels=16, cells_per_stage=5)
    else:
        net = NB201Supernet(
            channels=16, cells_per_stage=5, partial_channels=4 if name == "pc-darts" else 1
        )
    net.to(device)
    alpha = (1e-3 * torch.randn(6, 5, device=device)).requires_grad_(True)
    beta = (1e-3 * torch.randn(6, device=device)).requires_grad_(True)
    arch = [alpha, beta] if name == "pc-darts" else [alpha]
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    a_optimizer = torch.optim.Adam(arch, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def forward(live: bool) -> torch.Tensor:
        if name == "fixed-conv3x3":
            return net(x)
        a = alpha if live else alpha.detach()
        if name == "darts":
            return net(x, [a.softmax(-1)])
        if name == "pc-darts":
            b = beta if live else beta.detach()
            parts = [b[list(e)].softmax(-1) for e in net.node_edges[0]]
            return net(x, [a.softmax(-1)], None, [torch.cat(parts)])
        if name == "gdas":
            hard, index = gumbel_hard(a, 1.0, generator)
            return net(x, [hard], [index])
        index = torch.randint(0, 5, (6,), generator=generator).tolist()
        return net(x, None, [index])

    def weight_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(forward(False), y).backward()
        optimizer.step()

    def arch_step() -> None:
        a_optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward(True), y)
        for a, g in zip(arch, torch.autograd.grad(loss, arch), strict=True):
            a.grad = g
        a_optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # which part of the network is running, for --by-module
    part = ["head"]

    def enter(label: str) -> object:
        def hook(*_: object) -> None:
            part.append(label)

        return hook

    def leave(*_: object) -> None:
        part.pop()

    def label(module: torch.nn.Module) -> str | None:
        if isinstance(module, MixedEdge):
            return "mixed edges"
        if isinstance(module, ResidualReduction):
            return "reductions"
        if module is net.stem:
            return "stem"
        if type(module).__name__ in ("NB201Cell", "_NB201SearchCell"):
            return "cell other"
        return None

    handles = []
    if args.by_module:
        for module in net.modules():
            kind = label(module)
            if kind is not None:
                handles.append(module.register_forward_pre_hook(enter(kind)))
                handles.append(module.register_forward_hook(leave))

    steps = {"weight": weight_step}
    if name in ("darts", "pc-darts", "gdas"):
        steps["arch"] = arch_step
    result: dict[str, object] = {"config": name}
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for kind, step in steps.items():
        storages: dict[int, tuple[int, str]] = {}

        def pack(t: torch.Tensor, storages: dict[int, tuple[int, str]] = storages) -> torch.Tensor:
            storage = t.untyped_storage()
            storages.setdefault(storage.data_ptr(), (storage.nbytes(), part[-1]))
            return t

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step()
        sync()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gpu = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
        result[f"{kind}_saved_MB"] = sum(b for b, _ in storages.values()) / 2**20
        result[f"{kind}_parts_MB"] = {
            p: sum(b for b, q in storages.values() if q == p) / 2**20 for p in PARTS
        }
        result[f"{kind}_rss_MB"] = (rss_after - rss_before) / 1024
        result[f"{kind}_gpu_MB"] = gpu
    result["rss_total_MB"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start) / 1024
    for handle in handles:
        handle.remove()
    for kind, step in steps.items():
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.steps):
            sync()
            start = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - start)
        result[f"{kind}_ms"] = 1000 * statistics.median(times)
    queue.put(result)


def _run(name: str, args: argparse.Namespace) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(name, args, queue))
    process.start()
    row = queue.get()
    process.join()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--by-module", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rounds = [[_run(name, args) for name in CONFIGS] for _ in range(args.repeats)]
    print(
        f"NB201 supernet, C=16, N=5, 32x32, batch {args.batch}, device {args.device}, "
        f"threads {args.threads}, median of {args.steps} steps, {args.repeats} round(s) "
        f"({sys.platform})"
    )
    header = f"{'config':>14} {'step':>6} {'saved MB':>9} {'peak RSS +MB':>12} {'GPU peak MB':>11}"
    print(header + "".join(f" {'ms r' + str(r + 1):>8}" for r in range(args.repeats)))
    for i, name in enumerate(CONFIGS):
        first = rounds[0][i]
        for kind in ("weight", "arch"):
            if f"{kind}_ms" not in first:
                continue
            gpu = first[f"{kind}_gpu_MB"]
            gpu_text = "-" if gpu is None else f"{gpu:.0f}"
            times = "".join(f" {rounds[r][i][f'{kind}_ms']:8.0f}" for r in range(args.repeats))
            print(
                f"{name:>14} {kind:>6} {first[f'{kind}_saved_MB']:9.0f} "
                f"{first[f'{kind}_rss_MB']:12.0f} {gpu_text:>11}{times}"
            )
    if args.by_module:
        print("saved MB by part of the network:")
        print(f"{'config':>14} {'step':>6}" + "".join(f" {p:>12}" for p in PARTS))
        for row in rounds[0]:
            for kind in ("weight", "arch"):
                if f"{kind}_parts_MB" in row:
                    parts = row[f"{kind}_parts_MB"]
                    print(
                        f"{row['config']:>14} {kind:>6}"
                        + "".join(f" {parts[p]:12.0f}" for p in PARTS)
                    )
    by = {row["config"]: row for row in rounds[0]}

    def peak(row: dict, key: str) -> float:
        return max(
            row[f"{kind}_{key}"] or 0.0 for kind in ("weight", "arch") if f"{kind}_ms" in row
        )

    darts_rss, pc_rss = by["darts"]["rss_total_MB"], by["pc-darts"]["rss_total_MB"]
    print(
        f"PC-DARTS / DARTS peak RSS growth over both steps (CPU, allocator slack included): "
        f"{pc_rss:.0f} / {darts_rss:.0f} MB = {pc_rss / max(1e-9, darts_rss):.2f}"
    )
    for key, what in (("saved_MB", "saved tensors"), ("gpu_MB", "GPU peak allocated")):
        if by["darts"][f"weight_{key}"] is None:
            continue
        ratio = peak(by["pc-darts"], key) / peak(by["darts"], key)
        print(
            f"PC-DARTS / DARTS peak memory ({what}, larger of the two steps): "
            f"{peak(by['pc-darts'], key):.0f} / {peak(by['darts'], key):.0f} MB = {ratio:.2f} "
            "(target <= 0.33)"
        )
    for name in ("darts", "pc-darts", "gdas", "spos"):
        for kind in ("weight", "arch", "both"):
            ratios = []
            for rows in rounds:
                row = {r["config"]: r for r in rows}
                fixed = row["fixed-conv3x3"]["weight_ms"]
                if kind == "both":
                    if "arch_ms" not in row[name]:
                        continue
                    ms = row[name]["weight_ms"] + row[name]["arch_ms"]
                elif f"{kind}_ms" in row[name]:
                    ms = row[name][f"{kind}_ms"]
                else:
                    continue
                ratios.append(ms / fixed)
            if ratios:
                what = "weight + arch steps" if kind == "both" else f"{kind} step"
                print(
                    f"{name} {what} / fixed all-conv3x3 step: "
                    f"median {statistics.median(ratios):.2f}x "
                    f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
                    + (" (target <= 2.5x)" if kind != "both" else "")
                )


if __name__ == "__main__":
    main()
