"""Perplexity-vs-parameters front of the searched ``llm`` sub-networks (issue 20, item 3),
reduced CPU setting: inherited weights against the same architectures trained alone.

LLaMA-NAS's pipeline (Sarah, A. et al. arXiv:2405.18377) on a byte-level language model:

1. pre-train the largest network of the ``llm`` space (default options: widths 32-64, 2-4
   layers, 2-8 heads of 8, MLP 64-256, context 64) for ``--pretrain`` steps on the default
   corpus (nasforge's own source; ``--corpus`` for other text), the stand-in for LLaMA2-7B;
2. fine-tune it as a super-network for ``--finetune`` steps (InstaTune: the largest network
   on the labels, the smallest and one random sub-network distilled from it, each step);
3. search the sub-networks with NSGA-II for ``--trials`` trials on held-out perplexity and
   ``params_M``, every candidate with inherited weights (:func:`nasforge.lm.search_sublms`);
4. train every architecture of the front (at most ``--front-max``, spread over the parameter
   range) alone from scratch for ``--pretrain + --finetune`` steps (the steps the
   super-network took) with the pre-training recipe, and measure its perplexity on the same
   held-out windows.

It prints the settings and a Markdown table (architecture, parameters, inherited perplexity,
perplexity trained alone). Everything is kept in ``--out`` (the super-network's checkpoints,
the study in SQLite, the stand-alone results): a stopped run resumes and a finished one
only prints. About 10 minutes on the project's 2-core machine with the defaults:
    nice python benchmarks/lm_front.py --out /tmp/lm_front
A one-minute smoke run:
    python benchmarks/lm_front.py --out /tmp/lm_smoke --pretrain 30 --finetune 15 \\
        --trials 10 --front-max 3 --eval-windows 16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nasforge.lm import (
    TrainSettings,
    load_corpus,
    perplexity,
    prepare_super_lm,
    search_sublms,
    train_alone,
)
from nasforge.spaces.llm import LLMSpace
from nasforge.train.trainer import seeded


def spread(items: list, count: int) -> list:
    """At most ``count`` of ``items`` (sorted by size), evenly spread, ends included."""
    if len(items) <= count:
        return items
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[int(i)] for i in picks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/lm_front")
    parser.add_argument("--corpus", nargs="*", default=None, help="text files or folders")
    parser.add_argument("--pretrain", type=int, default=600, help="steps of the largest network")
    parser.add_argument("--finetune", type=int, default=300, help="InstaTune steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--front-max", type=int, default=6)
    parser.add_argument("--eval-windows", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    space = LLMSpace()
    corpus = load_corpus(args.corpus)
    pretrain = TrainSettings(
        steps=args.pretrain, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
        seed=args.seed,
    )  # fmt: skip
    finetune = TrainSettings(
        steps=args.finetune, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr / 3,
        warmup=10, seed=args.seed,
    )  # fmt: skip
    print(f"space {space!r}")
    print(
        f"corpus {'nasforge source' if args.corpus is None else args.corpus}: "
        f"{len(corpus.train)} training bytes, {len(corpus.valid)} held out"
    )
    print(f"pretrain {pretrain}\nfinetune {finetune} (sandwich, distilled, 2 sub-networks)")
    start = time.perf_counter()
    prepare_super_lm(
        out / "super", space=space, corpus=corpus, pretrain=pretrain, finetune=finetune,
        seed=args.seed,
    )  # fmt: skip
    train_s = time.perf_counter() - start
    print(f"super-network trained in {train_s:.0f} s", flush=True)

    start = time.perf_counter()
    result = search_sublms(
        out / "super", n_trials=args.trials, storage=f"sqlite:///{out / 'search.db'}",
        study_name=f"lm-front-seed{args.seed}", seed=args.seed,
        evaluator_params={"seq_len": args.seq_len, "max_windows": args.eval_windows},
    )  # fmt: skip
    search_s = time.perf_counter() - start
    front = sorted(result.front, key=lambda t: t.metrics["params_M"])
    print(
        f"NSGA-II: {len(result.study.trials)} trials in {search_s:.0f} s, front of {len(front)}",
        flush=True,
    )

    steps = args.pretrain + args.finetune
    alone_settings = TrainSettings(
        steps=steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
        seed=args.seed,
    )  # fmt: skip
    cache_path = out / "alone.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    rows = []
    start = time.perf_counter()
    for trial in spread(front, args.front_max):
        key = f"{trial.arch.text}|{steps}|{args.seed}"
        if key not in cache:
            with seeded(args.seed):
                model = space.build(trial.arch)
            train_alone(model, corpus, alone_settings)
            cache[key] = perplexity(
                model, corpus, seq_len=args.seq_len, max_windows=args.eval_windows
            )
            cache_path.write_text(json.dumps(cache, indent=1))
            print(f"alone {cache[key]:.2f}  {space.canonical(trial.arch).text}", flush=True)
        rows.append((trial, cache[key]))
    alone_s = time.perf_counter() - start

    print(
        f"\nHeld-out perplexity ({args.eval_windows} windows of {args.seq_len} bytes); "
        f"inherited: after {args.pretrain} + {args.finetune} super-network steps; alone: "
        f"{steps} steps from scratch ({alone_s:.0f} s for the new ones)\n"
    )
    print("| sub-network | params_M | macs_M | inherited ppl | alone ppl |")
    print("|---|---|---|---|---|")
    for trial, alone in rows:
        m = trial.metrics
        print(
            f"| {space.canonical(trial.arch).text} | {m['params_M']:.4f} | {m['macs_M']:.2f} | "
            f"{m['perplexity']:.2f} | {alone:.2f} |"
        )
    better = sum(t.metrics["perplexity"] <= alone for t, alone in rows)
    print(
        f"\ninherited at least as good as alone on {better} of {len(rows)}; "
        f"times: super-network {train_s:.0f} s, search {search_s:.0f} s, alone {alone_s:.0f} s"
    )


if __name__ == "__main__":
    main()
