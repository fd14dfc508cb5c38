"""The combined proxy: Spearman correlation with CIFAR-10 test accuracy over all architectures
of the reference table, learned from a few labelled architectures.

Reads NAS-Bench-Suite-Zero's scores (``nb201_zero_cost_proxies.csv.gz``), labels ``n``
architectures drawn at random with their benchmark *validation* accuracy (what a search would
query), fits :class:`nasforge.proxies.combined.CombinedProxy` and reports the Spearman
correlation of its prediction with the *test* accuracy over every architecture of the table,
beside the best single proxy. Repeated over ``--repeats`` draws.

    nice python3 benchmarks/proxy_combined.py --labels 20,50,100 --repeats 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scores", default=str(SHARED / "nb201" / "nb201_zero_cost_proxies.csv.gz")
    )
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--labels", default="20,50,100")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--encoding", default=None, help="also use this encoding (onehot)")
    args = parser.parse_args()

    from nasforge import spaces, tabular
    from nasforge.proxies.combined import CombinedProxy
    from nasforge.proxies.scores import kendall, read_reference, spearman

    table = read_reference(args.scores, dataset=args.dataset)
    bench = tabular.create("nb201")
    valid = np.array([bench.query(a, args.dataset, "valid_acc") for a in table.archs])
    test = np.array([bench.query(a, args.dataset, "test_acc") for a in table.archs])
    singles = {n: spearman(table.column(n), test) for n in table.names}
    best = max(singles, key=singles.get)
    print(f"# {len(table)} architectures of {Path(args.scores).name} ({args.dataset})")
    print(
        f"# best single proxy: {best} Spearman {singles[best]:.3f}; "
        + ", ".join(f"{n} {v:.3f}" for n, v in sorted(singles.items(), key=lambda x: -x[1]))
    )
    space = spaces.create("nb201")
    print("# kendall*: mean over the first 3 draws")
    print(f"{'labels':>6} {'mean':>6} {'min':>6} {'max':>6} {'kendall*':>8} {'beats best':>10}")
    for n in (int(x) for x in args.labels.split(",")):
        rho, tau, wins = [], [], 0
        for r in range(args.repeats):
            rows = np.random.default_rng(r).choice(len(table), size=n, replace=False)
            combo = CombinedProxy(encoding=args.encoding, space=space if args.encoding else None)
            combo.fit(table, {table.archs[i]: valid[i] for i in rows})
            assert combo.result is not None and combo.result.n_labelled == n
            pred = combo.predict(table)
            rho.append(spearman(pred, test))
            if r < 3:  # Kendall over all pairs of 9,445 archs takes a second
                tau.append(kendall(pred, test))
            wins += rho[-1] > singles[best]
        print(
            f"{n:6d} {np.mean(rho):6.3f} {np.min(rho):6.3f} {np.max(rho):6.3f} "
            f"{np.mean(tau):8.3f} {wins:>6d}/{args.repeats}"
        )


if __name__ == "__main__":
    main()
