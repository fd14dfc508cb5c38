"""Score tables: reading a reference table, caching computed scores, rank correlations."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError, StorageError, UnknownNameError
from nasforge.proxies.scores import (
    compute_scores,
    kendall,
    kendall_numpy,
    rank_normalise,
    read_reference,
    spearman,
    spearman_numpy,
)

A = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
B = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


def write(path, text):
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def test_reads_a_suite_zero_table_with_aliases(tmp_path):
    path = write(
        tmp_path / "t.csv.gz",
        f"arch_index,arch,dataset,synflow,zc_params\n1,{A},cifar10,5.0,0.8\n"
        f"0,{B},cifar10,3.0,0.1\n0,{B},ImageNet16-120,1.0,0.1\n",
    )
    table = read_reference(path, dataset="cifar10")
    assert table.names == ("synflow", "params")
    assert [a.text for a in table.archs] == [A, B]
    assert table.column("params").tolist() == [0.8, 0.1]
    with pytest.raises(UnknownNameError):
        table.column("nwot")


def test_reference_table_without_expected_columns(tmp_path):
    no_arch = write(tmp_path / "a.csv.gz", "name,synflow\nx,1\n")
    with pytest.raises(InvalidConfigError, match="'arch' column"):
        read_reference(no_arch)
    no_proxy = write(tmp_path / "b.csv.gz", f"arch,dataset,foo\n{A},cifar10,1\n")
    with pytest.raises(InvalidConfigError, match="lacks"):
        read_reference(no_proxy)
    with pytest.raises(InvalidConfigError, match="nwot"):
        read_reference(write(tmp_path / "c.csv.gz", f"arch,dataset,synflow\n{A},cifar10,1\n"),
                       proxies=["nwot"])  # fmt: skip
    with pytest.raises(InvalidConfigError, match="no rows for dataset"):
        read_reference(write(tmp_path / "d.csv.gz", f"arch,dataset,synflow\n{A},cifar100,1\n"))
    with pytest.raises(StorageError, match="No proxy score table"):
        read_reference(tmp_path / "missing.csv")


def test_correlations_match_scipy_definitions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y = x + y
    x[:5] = x[0]  # ties
    scipy = pytest.importorskip("scipy.stats")
    assert spearman(x, y) == pytest.approx(scipy.spearmanr(x, y)[0])
    assert kendall(x, y) == pytest.approx(scipy.kendalltau(x, y)[0])
    assert rank_normalise([3, 1, 2]).tolist() == [1.0, 0.0, 0.5]


@pytest.mark.parametrize("n", [2, 7, 300])
def test_scipy_and_numpy_correlations_agree_with_ties(n):
    pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n)
    for _ in range(5):
        # integer scores: many ties on both sides, as in accuracy tables and proxy scores
        x = rng.integers(0, max(2, n // 4), size=n).astype(float)
        y = x + rng.integers(0, 3, size=n)
        assert spearman(x, y) == pytest.approx(spearman_numpy(x, y), abs=1e-12, nan_ok=True)
        assert kendall(x, y) == pytest.approx(kendall_numpy(x, y), abs=1e-12, nan_ok=True)
    constant = np.ones(n)
    assert np.isnan(kendall(constant, rng.normal(size=n)))
    assert np.isnan(spearman(rng.normal(size=n), constant))


def test_correlations_without_scipy(monkeypatch):
    from nasforge import ranks as module

    monkeypatch.setattr(module, "_scipy_stats", lambda: None)
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert kendall([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(2 / 3)
    with pytest.raises(InvalidConfigError, match="NaN"):
        kendall([1.0, float("nan")], [1.0, 2.0])


def test_disk_cache_reuses_scores(tmp_path, nb201):
    pytest.importorskip("torch")
    from nasforge.proxies import scores as module

    archs = [nb201.parse(A)]
    build = {"channels": 4, "cells_per_stage": 1}
    first = compute_scores(nb201, archs, ["synflow"], batch_size=4, build=build, cache_dir=tmp_path)
    files = list(tmp_path.glob("nb201-synflow-seed0-*.jsonl"))
    assert len(files) == 1 and A in files[0].read_text()
    module._MEMORY.clear()
    files[0].write_text(files[0].read_text().replace(str(first.values[0, 0]), "123.5"))
    again = compute_scores(nb201, archs, ["synflow"], batch_size=4, build=build, cache_dir=tmp_path)
    assert again.values[0, 0] == 123.5  # read from disk, not recomputed
