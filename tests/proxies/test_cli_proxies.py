"""``nasforge proxies``: correlations of computed proxies with the benchmark and a reference."""

from __future__ import annotations

import gzip
import json

import pytest
from typer.testing import CliRunner

from nasforge import cli

pytest.importorskip("torch")


def run(*args: str):
    return CliRunner().invoke(cli.app, ["proxies", *args])


def test_prints_correlations_with_accuracy_and_reference(tmp_path, nb201):
    rows = ["arch,dataset,params,synflow"]
    for i in range(6):
        arch = nb201.from_index(i)
        rows.append(f"{arch.text},cifar10,{i},{-i}")
    path = tmp_path / "ref.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    result = run("--sample", "4", "--proxy", "params", "--batch-size", "4",
                 "--reference", str(path), "--json", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["archs"] == 4 and [r["proxy"] for r in data["proxies"]] == ["params"]
    row = data["proxies"][0]
    assert set(row) == {
        "proxy", "spearman_acc", "kendall_acc", "reference_spearman_acc",
        "spearman_reference", "kendall_reference",
    }  # fmt: skip
    # our params and the reference column rank the sampled cells alike only if they agree;
    # the reference column here is the row number, so just check the range
    assert -1.0 <= row["spearman_reference"] <= 1.0


def test_table_output_and_bad_input(tmp_path):
    result = run("--sample", "3", "--proxy", "params", "--batch-size", "4", "-q")
    assert result.exit_code == 0, result.output
    assert "Spearman" in result.output and "params" in result.output
    bad = run("--sample", "3", "--proxy", "synflw", "-q")
    assert bad.exit_code == 2 and "synflow" in bad.output
    (tmp_path / "bad.csv").write_text("name,score\nx,1\n")
    missing = run("--sample", "3", "--reference", str(tmp_path / "bad.csv"), "-q")
    assert missing.exit_code == 2 and "'arch' column" in missing.output
