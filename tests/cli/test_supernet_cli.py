"""``nasforge supernet train`` and ``search``: train a tiny supernet, search it, export the
chosen sub-network with the printed command; resume; bad input in one line with exit code 2."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_testing import assert_usage_error, invoke, sqlite

import nasforge
from nasforge.constraints import Constraint
from nasforge.train.data import SyntheticImages

#: A uniform (SPOS) supernet of ofa-cifar at width 0.25, trained 2 steps at 16 px on the
#: synthetic images.
TINY = (
    "--dataset", "synthetic", "--schedule", "uniform", "--epochs", "1", "--batch-size", "16",
    "--data-fraction", "0.2", "--resolutions", "16", "--steps-per-epoch", "2", "--device", "cpu",
)  # fmt: skip
#: A small Once-for-All search: 2 random sub-networks, 2 generations of 6, the best measured.
SMALL = (
    "--measured", "2", "--population", "6", "--generations", "2", "--top-k", "1",
    "--recalibration-batches", "1", "--valid-images", "16",
)  # fmt: skip


def train(out: Path, *args: str) -> Any:
    return invoke("supernet", "train", "--out", str(out), *TINY, *args)


def supernet_search(where: Path | str, *args: str) -> Any:
    return invoke("supernet", "search", str(where), *args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("supernet") / "run"
    result = train(out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["space"] == "ofa-cifar" and report["schedule"] == "uniform"
    assert report["settings"]["width_mult"] == 0.25  # the reduced preset's
    assert report["settings"]["batch_size"] == 16 and report["settings"]["resolutions"] == [16]
    [phase] = report["phases"]
    assert phase["name"] == "uniform" and Path(phase["checkpoint"]).is_file()
    assert report["resumed_after_epochs"] == 0 and len(report["history"]) == 1
    assert report["next"].startswith(f"nasforge supernet search {out} --constraint 'macs_M<=")
    recorded = json.loads((out / "data.json").read_text())
    assert recorded == {"dataset": "synthetic", "synthetic": asdict(SyntheticImages())}
    assert "phase 1/1 (uniform) epoch 1/1" in result.stderr
    return out


def test_train_search_and_export_the_chosen_subnetwork(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite(tmp_path)
    found = supernet_search(
        str(trained),
        "--constraint",
        "macs_M<=8",
        "--storage",
        url,
        *SMALL,
        "--json",
    )
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["constraints"]["macs_M"] <= 8 and report["metrics"]["macs_M"] <= 8
    assert 0 <= report["metrics"]["valid_acc"] <= 100
    assert report["measured"] in (2, 3)  # 2 random, and the best predicted unless among them
    assert len(report["candidates"]) == 1
    # the supernet was trained at 16 px only: so are the sub-networks searched
    assert all(c["arch"].startswith("res=16;") for c in report["candidates"])
    assert report["arch"].startswith("res=16;")
    assert report["study"] == "run-ofa-evolution-macs_M<=8-seed0"
    assert "searching the uniform supernet of ofa-cifar: measuring 2 random" in found.stderr
    # the same search again: the study resumes, nothing is measured again
    again = invoke(
        "supernet", "search", str(trained), "--constraint", "macs_M<=8", "--storage", url, *SMALL
    )
    assert again.exit_code == 0, again.stderr
    rows = dict(line.split(None, 1) for line in again.stdout.splitlines())
    assert rows["chosen"] == report["arch"]
    assert rows["macs_M"].endswith("(constraint macs_M<=8)")
    assert f"({report['measured']} measured)" in rows["trial"]
    # the printed export command writes the chosen sub-network with its inherited weights
    command = shlex.split(rows["export"])
    assert command[:2] == ["nasforge", "export"] and command[-2:] == ["--out", "subnet.pt"]
    monkeypatch.chdir(tmp_path)
    exported = invoke(*command[1:])
    assert exported.exit_code == 0, exported.stderr
    assert report["arch"] in exported.stdout and "trained" in exported.stdout
    network = nasforge.export.load(tmp_path / "subnet.pt")
    side = int(report["arch"].split(";")[0].removeprefix("res="))
    with torch.no_grad():
        assert network(torch.zeros(2, 3, side, side)).shape == (2, 10)
    # the exported sub-network as DNA's teacher of a supernet twice as wide: refused, naming
    # the block and both shapes
    wider = train(tmp_path / "dna", "--schedule", "dna", "--teacher", "subnet.pt",
                  "--width-mult", "0.5")  # fmt: skip
    assert_usage_error(wider, "The teacher's block 1", "(8, 16, 16)", "(16, 16, 16)")


def test_quiet_search_prints_nothing_on_stderr(trained: Path, tmp_path: Path) -> None:
    found = supernet_search(
        str(trained),
        "--storage",
        sqlite(tmp_path),
        *SMALL,
        "--quiet",
        "--study",
        "mine",
    )
    assert found.exit_code == 0, found.stderr
    assert found.stderr == ""
    assert "nasforge export mine --storage" in found.stdout
    other = supernet_search(trained, "--storage", sqlite(tmp_path), "--strategy", "random",
                            "--trials", "2", "--valid-images", "16", "--json")  # fmt: skip
    assert other.exit_code == 0, other.stderr
    report = json.loads(other.stdout)
    assert report["study"] == "run-random-seed0" and report["measured"] == 2
    assert report["predicted"] is None and report["candidates"] == []
    assert "searching the uniform supernet of ofa-cifar with random: 2 sub-networks" in (
        other.stderr
    )


def test_rerun_resumes_and_an_interrupted_run_resumes_where_it_stopped(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = train(trained, "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["resumed_after_epochs"] == 1
    assert "already holds this run, complete; nothing to train" in done.stderr

    from nasforge.elastic import _train

    run_epoch = _train._run_epoch
    calls: list[int] = []

    def stop_in_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_epoch(*args, **kwargs)

    out = tmp_path / "two"
    monkeypatch.setattr(_train, "_run_epoch", stop_in_second)
    stopped = train(out, "--epochs", "2", "--quiet")
    assert stopped.exit_code == 130
    assert stopped.stderr.strip() == (
        f"interrupted: 1 of 2 epochs saved in {out}; run the same command to resume"
    )
    monkeypatch.setattr(_train, "_run_epoch", run_epoch)
    resumed = train(out, "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming phase 1 epoch 1" in resumed.stderr
    assert "epoch 2/2" in resumed.stderr and "epoch 1/2" not in resumed.stderr
    rows = dict(line.split(None, 1) for line in resumed.stdout.splitlines())
    assert rows["resumed"] == "after 1 of 2 epochs"
    assert rows["space"] == "ofa-cifar (the elastic space of mobilenet for --preset reduced)"
    quiet = train(out, "--epochs", "2", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--schedule", "ofaa"), ["Unknown training schedule 'ofaa'", "bignas, dna, few-shot"]),
        (("--space", "nb201"), ["'nb201'", "mobilenet, ofa, ofa-cifar"]),
        (("--preset", "tiny"), ["Unknown preset 'tiny'", "paper, reduced"]),
        (("--schedule-param", "teacher_share"), ["Malformed --schedule-param 'teacher_share'"]),
        (("--schedule-param", "sandwich=2"), ["Unknown parameter 'sandwich'", "'uniform'"]),
        (("--teacher", "t.pt"), ["--teacher applies to --schedule dna"]),
        (("--resolutions", "16,x"), ["--resolutions '16,x'", "e.g. --resolutions 16,24,32"]),
        (("--data", "d"), ["--data does not apply to --dataset synthetic"]),
        (("--dataset", "imagenet"), ["Unknown dataset (--dataset) 'imagenet'", "folder"]),
        (("--epochs", "0"), ["epochs must be a positive integer, got 0"]),
        (("--synthetic", "colour=3"), ["Unknown setting of --synthetic 'colour'", "n_train"]),
        (("--synthetic", "n_train=0"), ["n_train must be a positive integer, got 0"]),
        (
            ("--dataset", "folder", "--synthetic", "n_train=50"),
            ["--synthetic applies to --dataset synthetic", "not folder"],
        ),
    ],
)
def test_bad_training_options(tmp_path: Path, args: tuple[str, ...], fragments: list[str]) -> None:
    result = train(tmp_path / "out", *args)
    assert_usage_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_bad_training_input(tmp_path: Path) -> None:
    no_data = invoke("supernet", "train", "--out", str(tmp_path / "out"))
    assert_usage_error(no_data, "nasforge supernet train trains a supernet: give --data PATH")
    teacher = invoke(
        "supernet",
        "train",
        "--out",
        str(tmp_path / "out"),
        "--schedule",
        "dna",
        "--teacher",
        str(tmp_path / "none.pt"),
        "--dataset",
        "synthetic",
    )
    assert_usage_error(teacher, "--teacher", "no such model file", "nasforge export")
    (tmp_path / "file").write_text("")
    assert_usage_error(train(tmp_path / "file"), "is a file; give a folder")


def test_a_run_of_another_schedule_space_or_setting_is_refused(trained: Path) -> None:
    before = sorted(p.name for p in trained.iterdir())
    schedule = train(trained, "--schedule", "ofa", "--epochs", "6")
    assert_usage_error(schedule, "holds a supernet of schedule 'uniform', not 'ofa'")
    space = invoke(
        "supernet", "train", "--out", str(trained), "--space", "ofa", *TINY[:-6], "--device", "cpu"
    )
    assert_usage_error(space, "holds a supernet of space 'ofa-cifar', not 'ofa'")
    setting = train(trained, "--batch-size", "32")
    assert_usage_error(setting, "settings.batch_size: saved 16, given 32")
    assert sorted(p.name for p in trained.iterdir()) == before


def test_bad_search_input(trained: Path, tmp_path: Path) -> None:
    url = sqlite(tmp_path)

    def search(*args: str, where: Path = trained) -> Any:
        return supernet_search(where, "--storage", url, *SMALL, *args)

    assert_usage_error(
        search(where=tmp_path),
        "holds no trained supernet (no manifest.json)",
        "nasforge supernet train --out",
    )
    line = assert_usage_error(
        search("--constraint", "macs_M<=0.01"), "macs_M<=0.01", "the lowest reachable macs_M is"
    )
    lowest = float(line.split("the lowest reachable macs_M is ")[1].split()[0])
    assert Constraint.parse(f"macs_M<={lowest * 1.001}").satisfied({"macs_M": lowest})
    assert_usage_error(
        search("--constraint", "energy_mJ<=15"),
        "Unknown constraint metric",
        "'energy_mJ'",
        "macs_M",
    )
    assert_usage_error(search("--constraint", "macs_M=<3"), "Malformed constraint 'macs_M=<3'")
    assert_usage_error(
        search("--strategy", "no-such"), "Unknown strategy (--strategy) 'no-such'", "ofa-evolution"
    )
    assert_usage_error(
        search("--strategy", "random", "--trials", "2"), "--population", "apply to ofa-evolution"
    )
    assert_usage_error(search("-p", "x=1"), "--param and --trials apply to other strategies")
    assert_usage_error(search("--top-k", "0"), "--top-k must be at least 1, got 0")
    assert_usage_error(search("--resolutions", "20"), "[20]", "choose from [16, 24, 32]")
    assert_usage_error(
        supernet_search(trained, "--storage", url, "--strategy", "random", "--resolutions", "16"),
        "--resolutions applies to ofa-evolution",
    )
    assert_usage_error(search("--dataset", "cifar10"), "search --dataset cifar10", "--data PATH")
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "data.json").unlink()
    assert_usage_error(search(where=copy), "does not say which data", "give --data PATH")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "phases_done": 0}))
    assert_usage_error(search(where=copy), "none of its 1 phases completed", "again to resume")


def made_up_table(path: Path) -> tuple[str, float, float]:
    """A per-layer table of 'pixel1' (no timing) for every layer of the tiny supernet's
    sub-networks; returns its metric and the lowest and highest latency of a probe."""
    from itertools import product

    from nasforge import spaces
    from nasforge.hardware.layer_lut import LayerLatencyTable

    space = spaces.create("ofa-cifar")
    decisions = space.decisions()
    specs: dict[str, Any] = {}
    for r, k, e in product(range(3), range(3), range(3)):
        by_kind = {"resolution": r, "depth": 2, "kernel": k, "expansion": e}
        choices = [by_kind[d.name.rpartition("_")[2]] for d in decisions]
        arch = space.from_choices(choices)
        specs.update((s.key, s) for s in space.layers(arch, num_classes=10, width_mult=0.25))
    entries = {key: 1e-5 * s.kernel**2 * s.resolution**2 + 0.01 for key, s in specs.items()}
    table = LayerLatencyTable(entries, fixed_ms=0.25, backend="tflite", device="pixel1")
    table.to_csv(path)
    smallest, largest = space.smallest(), space.largest()
    low, high = (
        table.predict(space.layers(a, num_classes=10, width_mult=0.25)) for a in (smallest, largest)
    )
    return table.metric, low, high


def test_search_under_a_table_latency_target(trained: Path, tmp_path: Path) -> None:
    metric, low, high = made_up_table(tmp_path / "pixel1.csv")
    assert metric == "latency_ms[pixel1-tflite-lut]" and low < high
    target = low + 0.3 * (high - low)
    found = supernet_search(
        str(trained),
        "--table",
        str(tmp_path / "pixel1.csv"),
        "--constraint",
        f"{metric}<={target}",
        "--storage",
        sqlite(tmp_path),
        *SMALL,
        "--json",
    )
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert low <= report["constraints"][metric] <= target
    assert report["metrics"][metric] == report["constraints"][metric]
    missing = supernet_search(
        str(trained),
        "--constraint",
        f"{metric}<={target}",
        "--storage",
        sqlite(tmp_path),
        *SMALL,
    )
    assert_usage_error(
        missing,
        f"no {metric} without the per-layer latency table",
        "--table PATH",
        "Latencies known now: none",
    )
    below = supernet_search(
        str(trained),
        "--table",
        str(tmp_path / "pixel1.csv"),
        "--constraint",
        f"{metric}<={low / 2}",
        "--storage",
        sqlite(tmp_path),
    )
    assert_usage_error(below, f"the lowest reachable {metric} is")


def test_search_under_a_latency_measured_here(trained: Path, tmp_path: Path) -> None:
    found = supernet_search(
        trained,
        "--measure",
        "--constraint",
        "latency_ms[cpu-torch]<=500",
        "--storage",
        sqlite(tmp_path),
        *SMALL,
        "--json",
        "--quiet",
    )
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    value = report["constraints"]["latency_ms[cpu-torch]"]
    assert 0 < value <= 500 and report["metrics"]["latency_ms[cpu-torch]"] == value


def test_search_makes_the_synthetic_images_the_supernet_was_trained_on(tmp_path: Path) -> None:
    out = tmp_path / "made-up"
    trained = train(out, "--synthetic", "n_train=160", "--synthetic", "seed=3", "--quiet")
    assert trained.exit_code == 0, trained.stderr
    recorded = json.loads((out / "data.json").read_text())
    assert recorded["synthetic"] == asdict(SyntheticImages(n_train=160, seed=3))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["data"]["train_images"] == 160
    # the search measures on the held-out half of those images, not of the default ones
    found = supernet_search(out, "--storage", sqlite(tmp_path), *SMALL, "--json", "--quiet")
    assert found.exit_code == 0, found.stderr
    report = json.loads(found.stdout)
    assert 0 <= report["metrics"]["valid_acc"] <= 100
    # so does --dataset synthetic given again
    again = supernet_search(out, "--storage", sqlite(tmp_path), *SMALL, "--dataset",
                            "synthetic", "--study", "again", "--json", "--quiet")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["metrics"]["valid_acc"] == report["metrics"]["valid_acc"]
