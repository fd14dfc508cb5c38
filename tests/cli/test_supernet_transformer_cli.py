"""``nasforge supernet train --space vit-cifar|llm`` and ``nasforge supernet search DIR`` on
the super-transformer and the language-model super-network: tiny runs end to end, a resumed
study, and bad input in one line with exit code 2."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from cli_testing import assert_usage_error, invoke, sqlite

from nasforge import export, spaces
from nasforge.spaces.llm import LLMSpace

#: Three classes of 32 px synthetic images, one step of batch 8 on one thread.
SYNTHETIC = ("n_train=48", "n_test=8", "num_classes=3", "size=32", "seed=1")
VIT = (
    "--space", "vit-cifar", "--dataset", "synthetic",
    *(item for s in SYNTHETIC for item in ("--synthetic", s)),
    "--epochs", "1", "--batch-size", "8", "--steps-per-epoch", "1", "--data-fraction", "1",
    "--lr", "0.001", "--device", "cpu", "--threads", "1",
)  # fmt: skip
#: AutoFormer's evolution, one generation of four.
EVOLUTION = (
    "--population", "4", "--generations", "1", "-p", "parents=2", "-p", "mutations=1",
    "-p", "crossovers=1", "--valid-images", "16",
)  # fmt: skip
LM = (
    "--space", "llm", "--pretrain-steps", "3", "--finetune-steps", "2", "--batch-size", "4",
    "--seq-len", "16", "--threads", "1",
)  # fmt: skip
TEXT = "The quick brown fox jumps over the lazy dog; search finds a smaller network.\n" * 40


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vit") / "run"
    result = invoke("supernet", "train", "--out", str(out), *VIT, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["space"] == "vit-cifar" and report["schedule"] == "uniform"
    assert report["private"] is True and report["settings"]["private"] is True
    assert report["settings"]["batch_size"] == 8 and report["settings"]["lr"] == 0.001
    assert report["resumed_after_epochs"] == 0 and len(report["history"]) == 1
    assert Path(report["checkpoint"]).is_file()
    assert report["next"].startswith(f"nasforge supernet search {out} --constraint 'params_M<=")
    recorded = json.loads((out / "data.json").read_text())
    assert recorded["dataset"] == "synthetic" and recorded["synthetic"]["num_classes"] == 3
    return out


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    (root / "a.txt").write_text(TEXT)
    (root / "b.txt").write_text(TEXT.upper())
    corpus = f"{root / 'a.txt'},{root / 'b.txt'}"  # comma-separated
    out = root / "run"
    result = invoke("supernet", "train", "--out", str(out), *LM, "--corpus", corpus, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["corpus"]["files"] == 2
    assert report["corpus"]["train_bytes"] + report["corpus"]["valid_bytes"] == 2 * (len(TEXT) + 1)
    assert report["schedule"] == "sandwich" and report["schedule_params"]["distill"] is True
    assert report["pretrain"]["steps"] == 3 and report["finetune"]["steps"] == 2
    assert report["pretrain"]["seq_len"] == 16 and report["finetune"]["lr"] == 1e-3
    space = LLMSpace()
    assert report["measured"]["largest"]["arch"] == space.largest().text
    assert report["measured"]["smallest"]["params_M"] < report["measured"]["largest"]["params_M"]
    assert report["measured"]["largest"]["perplexity"] > 1
    assert "pre-training the largest network for 3 steps" in result.stderr
    return out


def test_vit_search_under_a_parameter_bound_then_resumed(vit_run: Path, tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    args = ("supernet", "search", str(vit_run), "--constraint", "params_M<=0.5", "--storage", url)
    found = invoke(*args, *EVOLUTION, "--json")
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["study"] == "run-autoformer-evolution-params_M<=0.5-seed0"
    assert report["constraints"]["params_M"] <= 0.5
    assert report["measured"] == 8  # the population of 4, then 4 children
    assert 0 <= report["metrics"]["valid_acc"] <= 100
    arch = spaces.create("vit-cifar").parse(report["arch"])
    assert spaces.create("vit-cifar").costs(arch, num_classes=3)["params_M"] <= 0.5
    assert "with autoformer-evolution: a population of 4 over 1 generation" in found.stderr
    again = invoke(*args, *EVOLUTION)
    assert again.exit_code == 0, again.stderr
    rows = dict(line.split(None, 1) for line in again.stdout.splitlines())
    assert rows["chosen"] == report["arch"]
    assert "(8 measured)" in rows["trial"]  # nothing measured again
    assert rows["params_M"].endswith("(constraint params_M<=0.5)")
    assert again.stderr == ""
    # the export line it prints writes the chosen sub-network with its inherited weights
    command = shlex.split(report["export"])
    assert rows["export"] == report["export"] and command[:2] == ["nasforge", "export"]
    out = tmp_path / "subnet.pt"
    written = invoke(*command[1:-1], str(out))
    assert written.exit_code == 0, written.stderr
    assert export.load(out).config.embed_dim == spaces.create("vit-cifar").values(arch)["embed_dim"]


def test_vit_constraint_no_subnetwork_meets_gives_the_lowest(vit_run: Path, tmp_path: Path) -> None:
    space = spaces.create("vit-cifar")
    smallest = space.smallest()
    lowest = min(
        space.costs(space.parse(smallest.text.replace("patch=4", f"patch={p}")), num_classes=3)[
            "params_M"
        ]
        for p in space.PATCH_SIZES
    )
    result = invoke(
        "supernet", "search", str(vit_run), "--constraint", "params_M<=0.01",
        "--storage", sqlite(tmp_path),
    )  # fmt: skip
    line = assert_usage_error(result, "No sub-network", "params_M<=0.01", "lowest reachable")
    assert f"params_M is {lowest:g}" in line


def test_vit_train_resumes_and_refuses_other_settings(vit_run: Path) -> None:
    again = invoke("supernet", "train", "--out", str(vit_run), *VIT, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed_after_epochs"] == 1
    assert "already holds this run" in again.stderr
    shared = invoke("supernet", "train", "--out", str(vit_run), *VIT, "--shared")
    assert_usage_error(shared, "other settings", "private: saved True, given False")


def test_vit_sandwich_with_distillation_and_shared_tokens(tmp_path: Path) -> None:
    result = invoke(
        "supernet", "train", "--out", str(tmp_path / "run"), *VIT, "--schedule", "sandwich",
        "--schedule-param", "distill=true", "--schedule-param", "sandwich_random=1", "--shared",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schedule"] == "sandwich" and report["private"] is False
    assert report["schedule_params"] == {"sandwich_random": 1, "distill": True}
    settings = report["settings"]
    assert settings["sampling"] == "sandwich" and settings["distill"] is True
    assert settings["sandwich_random"] == 1 and settings["private"] is False


def test_vit_search_with_another_strategy(vit_run: Path, tmp_path: Path) -> None:
    found = invoke(
        "supernet", "search", str(vit_run), "--storage", sqlite(tmp_path), "--strategy",
        "random", "--trials", "3", "--valid-images", "8", "--study", "mine", "--json",
    )  # fmt: skip
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["study"] == "mine" and report["measured"] == 3 and report["history"] == []


def test_lm_search_prints_the_front(lm_run: Path, tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    args = (
        "supernet", "search", str(lm_run), "--constraint", "params_M<=0.15", "--storage", url,
        "--trials", "4", "-p", "population_size=4", "--seq-len", "16", "--max-windows", "2",
    )  # fmt: skip
    found = invoke(*args, "--json")
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["study"] == "run-nsga2-params_M<=0.15-seed0" and report["measured"] == 4
    assert report["objectives"] == ["perplexity:min", "params_M:min"]
    front = report["front"]
    assert front and all(e["metrics"]["params_M"] <= 0.15 for e in front)
    perplexities = [e["metrics"]["perplexity"] for e in front]
    assert perplexities == sorted(perplexities)
    # on a two-objective front a lower perplexity costs more parameters
    sizes = [e["metrics"]["params_M"] for e in front]
    assert sizes == sorted(sizes, reverse=True)
    assert "with nsga2: 4 sub-networks measured" in found.stderr
    table = invoke(*args)
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split() == ["trial", "perplexity", "params_M", "macs_M", "arch"]
    assert [line.split()[-1] for line in lines[2:]] == [e["arch"] for e in front]


def test_lm_train_resumes_and_restarts(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text(TEXT)
    corpus = str(tmp_path / "text")  # a folder
    args = ("supernet", "train", "--out", str(tmp_path / "run"), *LM, "--corpus", corpus)
    first = invoke(*args, "--json")
    assert first.exit_code == 0, first.stderr
    again = invoke(*args, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True and again.stderr == ""
    assert json.loads(again.stdout)["measured"] == json.loads(first.stdout)["measured"]
    other = invoke(*args, "--schedule", "uniform")
    assert_usage_error(other, "trained with other settings")
    restarted = invoke(*args, "--schedule", "uniform", "--restart", "--json")
    assert restarted.exit_code == 0, restarted.stderr
    report = json.loads(restarted.stdout)
    assert report["resumed"] is False and report["schedule"] == "uniform"


def test_lm_constraint_no_subnetwork_meets_gives_the_lowest(lm_run: Path, tmp_path: Path) -> None:
    lowest = LLMSpace().costs(LLMSpace().smallest(), seq=16)["params_M"]
    result = invoke(
        "supernet", "search", str(lm_run), "--constraint", "params_M<=0.001",
        "--storage", sqlite(tmp_path), "--seq-len", "16",
    )  # fmt: skip
    assert_usage_error(result, "params_M<=0.001", f"lowest reachable params_M is {lowest:g}")


def test_empty_corpus_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    result = invoke(
        "supernet", "train", "--out", str(tmp_path / "run"), *LM,
        "--corpus", str(tmp_path / "empty.txt"),
    )  # fmt: skip
    assert_usage_error(result, "empty.txt", "is empty")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--space", "vit-tiny"), ["'vit-tiny'", "llm, mobilenet, ofa, ofa-cifar, vit, vit-cifar"]),
        ((*VIT, "--schedule", "ofa"), ["'ofa'", "sandwich, uniform"]),
        ((*VIT, "--schedule-param", "distill=true"), ["Unknown parameter", "--schedule uniform"]),
        ((*VIT, "--corpus", "a.txt"), ["--corpus does not apply to --space vit-cifar"]),
        ((*VIT, "--width-mult", "0.5"), ["--width-mult does not apply to --space vit-cifar"]),
        ((*VIT, "--preset", "huge"), ["'huge'", "paper, reduced, search"]),
        ((*LM, "--epochs", "2"), ["--epochs does not apply to --space llm"]),
        ((*LM, "--schedule", "bignas"), ["'bignas'", "sandwich, uniform"]),
        ((*LM, "--device", "cuda"), ["trains on the CPU"]),
        (("--space", "mobilenet", "--private"), ["--private/--shared does not apply"]),
        ((*LM, "--corpus", "no/such/file.txt"), ["no/such/file.txt' does not exist"]),
        ((*LM, "--seq-len", "65"), ["--seq-len 65 does not fit", "64 positions"]),
    ],
)
def test_bad_train_options(tmp_path: Path, args: tuple[str, ...], fragments: list[str]) -> None:
    result = invoke("supernet", "train", "--out", str(tmp_path / "run"), *args)
    assert_usage_error(result, *fragments)


@pytest.mark.parametrize(
    ("kind", "args", "fragments"),
    [
        ("vit", ("--measured", "3"), ["--measured does not apply to a super-transformer"]),
        ("vit", ("--seq-len", "8"), ["--seq-len does not apply to a super-transformer"]),
        ("vit", ("-p", "crossover=1"), ["Unknown parameter of autoformer-evolution", "crossovers"]),
        ("vit", ("--strategy", "random", "--population", "3"), ["--population does not apply"]),
        ("vit", ("--constraint", "flops_G<=1"), ["'flops_G'", "params_M"]),
        ("vit", ("--constraint", "latency_ms[pixel3]<=3"), ["no latency_ms[pixel3] without"]),
        ("lm", ("--population", "3"), ["--population does not apply", "-p KEY=VALUE"]),
        ("lm", ("--valid-images", "3"), ["--valid-images does not apply to an llm"]),
        ("lm", ("--seq-len", "65"), ["does not fit the position embedding"]),
    ],
)
def test_bad_search_options(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kind: str,
    args: tuple[str, ...],
    fragments: list[str],
) -> None:
    folder = request.getfixturevalue(f"{kind}_run")
    result = invoke("supernet", "search", str(folder), "--storage", sqlite(tmp_path), *args)
    assert_usage_error(result, *fragments)
