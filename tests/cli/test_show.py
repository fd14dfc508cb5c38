"""``nasforge show``: a stored study, or the studies of a storage."""

from __future__ import annotations

import json
from pathlib import Path

from cli_testing import assert_usage_error, invoke, search_json, sqlite


def test_show_a_study(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    params = ["-p", "population_size=10", "-p", "tournament_size=3"]
    run = search_json("--storage", url, "--budget", "25", *params)
    result = invoke("show", run["study"], "--storage", url, "--top", "5", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["study"] == run["study"]
    assert (data["strategy"], data["seed"]) == ("regularized-evolution", 0)
    assert data["strategy_params"] == {"population_size": 10, "tournament_size": 3}
    assert data["objectives"] == ["valid_acc:max"]
    assert data["evaluator"]["dataset"] == "cifar10"
    assert data["states"] == {"COMPLETE": 25 + data["n_duplicates"]} and data["dedupe"] is True
    assert data["best"] == run["best"]
    assert len(data["top"]) == 5
    scores = [t["score"] for t in data["top"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == run["best"]["score"]

    text = invoke("show", run["study"], "--storage", url).stdout
    assert "population_size=10" in text and run["best"]["arch"] in text


def test_show_lists_the_studies(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    search_json("--storage", url, "--budget", "10")
    search_json("--storage", url, "--budget", "5", "--strategy", "random", "--seed", "1")
    data = json.loads(invoke("show", "--storage", url, "--json").stdout)
    rows = {row["name"]: row for row in data["studies"]}
    assert rows["nb201-regularized-evolution-cifar10-seed0"]["n_trials"] >= 10  # + free twins
    assert rows["nb201-random-cifar10-seed1"]["seed"] == 1
    assert rows["nb201-random-cifar10-seed1"]["n_trials"] == 5
    text = invoke("show", "--storage", url).stdout
    assert "random" in text


def test_show_bad_input(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    assert_usage_error(invoke("show"), "--storage")
    assert_usage_error(invoke("show", "--storage", url), "No study database")
    assert not (tmp_path / "x.db").exists()  # showing does not create a database
    search_json("--storage", url, "--study", "one", "--budget", "5")
    assert_usage_error(invoke("show", "onr", "--storage", url), "'onr'", "Did you mean 'one'?")
    assert_usage_error(invoke("show", "one", "--storage", "foo.db"), "Malformed storage URL")


def test_show_prints_whole_architectures_and_names_repeats(tmp_path: Path, monkeypatch) -> None:
    import nasforge

    monkeypatch.setenv("COLUMNS", "60")  # narrower than one architecture string
    url = sqlite(tmp_path)
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(storage=url, study_name="twins", strategy="random", evaluator=ev)
    best = nasforge.spaces.create("nb201").from_index(6111)
    study.enqueue_trial(best)
    study.enqueue_trial(best)
    study.optimize(ev, n_trials=4)
    study.storage.close()
    text = invoke("show", "twins", "--storage", url, "--top", "4").stdout
    lines = text.splitlines()
    for trial in study.trials:  # each string whole on one line, copyable
        assert any(trial.arch.text in line for line in lines), (trial.arch.text, text)
    repeated = [line for line in lines if best.text in line and "same architecture" in line]
    assert len(repeated) == 1 and "trials 0, 1" in repeated[0], text
    # the table names them by label; the label's line below gives the string
    assert text.count(best.text) == 2  # the "best" field and the list below the table
