"""The committed benchmark results: schema, statistics recomputed from the per-seed lists, and the
discriminative regime's four criteria (README, "Benchmark"). A rerun of ``make bench`` that breaks
any of them fails here before it is committed."""

import json
from pathlib import Path

import numpy as np
import pytest

from kdlab.bench.stats import paired_ci, verdict

RESULTS = Path(__file__).resolve().parents[1] / "results"


def load(name):
    path = RESULTS / name
    if not path.is_file():
        pytest.fail(f"{path.name} is missing: `make bench` writes it and it is committed")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name,regime", [("benchmark.json", "discriminative"), ("benchmark-easy.json", "easy")])
def test_every_entry_matches_its_per_seed_numbers(name, regime):
    r = load(name)
    assert r["complete"] is True and r["regime"] == regime and r["teacher"]["protocol"] == "pretrained"
    assert r["teacher"]["unlabelled_labels_seen"] == 0
    kd = r["methods"]["kd"]
    for e in [*r["methods"].values(), *r["ablations"].values(), r["student_all_labels"]]:
        assert len(e["acc"]) == len(r["seeds"]) and e["mean"] == pytest.approx(np.mean(e["acc"]))
    for e in r["methods"].values():
        diff, ci = paired_ci(e["acc"], kd["acc"])
        assert e["vs_kd"]["diff"] == pytest.approx(diff) and e["vs_kd"]["ci95"] == pytest.approx(ci)
        assert e["vs_kd"]["verdict"] == verdict(ci)
    everything = {**r["methods"], **r["ablations"]}
    for e in r["ablations"].values():
        diff, ci = paired_ci(e["acc"], everything[e["reference"]]["acc"])
        assert e["delta"] == pytest.approx(diff) and e["ci95"] == pytest.approx(ci)


def test_the_main_regime_meets_the_criteria_it_was_chosen_by():
    r = load("benchmark.json")
    teacher = r["teacher"]["acc"]
    assert len(r["seeds"]) == 5
    assert teacher >= 85
    assert r["student_all_labels"]["mean"] <= teacher - 10
    assert r["methods"]["kd"]["mean"] >= r["scratch_same_steps"]["mean"] + 15
    assert r["methods"]["scratch_pseudo"]["mean"] <= teacher - 5


def test_the_regime_search_records_every_setting_and_the_choice():
    r = load("regimes.json")
    assert len(r["settings"]) >= 8
    chosen = r["settings"][r["chosen"]]
    assert chosen["meets_all"] and all(v >= 0 for v in chosen["margins"].values())
    main = load("benchmark.json")
    assert chosen["settings"]["pool"] == main["dataset"]["pool"] and chosen["settings"]["epochs"] == main["epochs"]
    for row in r["settings"]:  # the verdict follows from the numbers stored beside it
        t = row["teacher"]
        expected = (t >= 85 and row["student_all_labels"] <= t - 10 and row["kd"] >= row["scratch_same_steps"] + 15
                    and row["scratch_pseudo"] <= t - 5)
        assert row["meets_all"] == expected
