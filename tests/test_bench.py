"""kdlab.bench: the quick variant end to end on a tiny dataset, the JSON schema, resume, config errors."""

import json

import numpy as np
import pytest

from kdlab.bench import BenchConfigError, load_config, mean_std, plan, quick_config, run_benchmark
from kdlab.bench.report import markdown
from kdlab.cli import main
from kdlab.data import generate_dataset

ENTRY_KEYS = {"acc", "mean", "std", "params", "flops", "best_epoch_acc", "train_seconds"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("bench") / "sim", classes=["MoveLeft", "MoveRight", "Grow"],
                            train_per_class=12, test_per_class=2, frames=8, size=32, progress=False)
    return root


@pytest.fixture(scope="module")
def result(tiny, tmp_path_factory):
    """The quick variant with a tiny dataset, 1 epoch and 2 seeds (runs in a fresh runs folder)."""
    runs = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("KDLAB_RUNS", str(runs))
    out = tmp_path_factory.mktemp("results") / "bench.json"
    cfg = load_config(quick=True, data=str(tiny), teacher="labelled", teacher_epochs=1, epochs=1, seeds=[0, 1],
                      methods=["scratch", "scratch_pseudo", "kd", "skd"],
                      ablations=["no_cascade", "joint_schedule"], sweep_budgets=[20, 50], sweep_methods=["scratch"],
                      skd={"schedule": "joint", "label_weight": 0.1, "logit_weight": 0.9, "probe_size": 8},
                      out=str(out)).replace(pool=None)  # the tiny set has fewer videos than a pool
    first = run_benchmark(cfg, progress=False)
    again = run_benchmark(cfg, progress=False)  # every run is loaded from the run cache now
    mp.undo()
    return cfg, out, first, again, runs


@pytest.mark.slow
def test_the_quick_variant_writes_json_that_matches_the_schema(result):
    cfg, out, _, again, _ = result
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(again))  # the last run wrote it
    assert stored["variant"] == "quick" and stored["complete"] is True and stored["regime"] == "discriminative"
    assert stored["teacher"]["unlabelled_labels_seen"] == 0  # the teacher never saw an unlabelled video's label
    for name in ("student_all_labels", "scratch_same_steps"):
        assert len(stored[name]["acc"]) == 2 and stored[name]["mean"] == pytest.approx(np.mean(stored[name]["acc"]))
    kd = stored["methods"]["kd"]["acc"]
    for name, e in stored["methods"].items():
        diffs = np.subtract(e["acc"], kd)
        assert e["vs_kd"]["diff"] == pytest.approx(diffs.mean())
        assert diffs.min() - 1e-9 <= e["vs_kd"]["ci95"][0] <= e["vs_kd"]["ci95"][1] <= diffs.max() + 1e-9
    for name, e in stored["ablations"].items():
        ref = {**stored["methods"], **stored["ablations"]}[e["reference"]]["acc"]
        diffs = np.subtract(e["acc"], ref)
        assert diffs.min() - 1e-9 <= e["ci95"][0] <= e["ci95"][1] <= diffs.max() + 1e-9
    assert stored["budget"] == cfg.budget == 10.0
    assert stored["seeds"] == [0, 1]
    assert set(stored["teacher"]) >= {"protocol", "acc", "params", "flops"} and stored["teacher"]["protocol"] == "labelled"
    assert list(stored["methods"]) == ["scratch", "scratch_pseudo", "kd", "skd"]
    assert list(stored["ablations"]) == ["no_cascade", "joint_schedule"]
    for e in [*stored["methods"].values(), *stored["ablations"].values()]:
        assert ENTRY_KEYS <= set(e)
        assert len(e["acc"]) == 2 and all(0 <= a <= 100 for a in e["acc"])
        assert e["params"] == stored["student"]["params"] < stored["teacher"]["params"]
        assert stored["teacher"]["flops"] > e["flops"] > 0
    assert stored["ablations"]["no_cascade"]["reference"] == "skd"
    assert stored["ablations"]["joint_schedule"]["reference"] == "no_cascade"
    delta = stored["ablations"]["joint_schedule"]["mean"] - stored["ablations"]["no_cascade"]["mean"]
    assert stored["ablations"]["joint_schedule"]["delta"] == pytest.approx(delta)
    sweep = stored["sweep"]
    assert sweep["budgets"] == [20.0, 50.0] and [r["budget"] for r in sweep["methods"]["scratch"]] == [20.0, 50.0]
    assert all(a is not None for a in sweep["teacher_acc"])
    assert 0 <= stored["pseudo_labels"]["coverage"] <= 1
    md = out.with_suffix(".md").read_text()
    assert "Quick variant" in md and "| skd |" in md and "## SKD ablations" in md
    assert str(out.parent) not in out.read_text() + md  # no path of this machine in the results


@pytest.mark.slow
def test_a_second_run_trains_nothing_and_gives_the_same_numbers(result):
    _, _, first, again, runs = result
    for part in ("methods", "ablations"):
        for name, e in first[part].items():
            assert again[part][name]["acc"] == e["acc"]
            assert again[part][name]["train_seconds"] == e["train_seconds"]  # the stored training time: not retrained


@pytest.mark.slow
def test_mean_and_std_match_numpy_on_the_per_seed_list(result):
    _, _, first, _, _ = result
    for e in [*first["methods"].values(), *first["ablations"].values()]:
        assert e["mean"] == pytest.approx(np.mean(e["acc"]))
        assert e["std"] == pytest.approx(np.std(e["acc"], ddof=1))
    assert mean_std([1.0, 2.0, 6.0]) == pytest.approx((3.0, np.std([1.0, 2.0, 6.0], ddof=1)))
    assert mean_std([4.0]) == (4.0, 0.0)


def test_unknown_method_ablation_or_setting_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(BenchConfigError, match="unknown method 'crd'; valid: scratch"):
        quick_config(methods=("kd", "crd"))
    with pytest.raises(BenchConfigError, match="unknown ablation 'no_kd'"):
        quick_config(ablations=("no_kd",))
    bad = tmp_path / "bench.toml"
    bad.write_text('[bench]\nmethods = ["kd", "crd"]\n')
    assert main(["bench", "--config", str(bad)]) == 2
    assert "unknown method 'crd'" in capsys.readouterr().err
    bad.write_text("epochz = 3\n")
    assert main(["bench", "--config", str(bad)]) == 2
    assert "unknown benchmark setting(s) epochz" in capsys.readouterr().err


def test_variants_and_plan():
    assert quick_config().out_path().name == "benchmark-quick.json"  # never overwrites the full results
    assert load_config(quick=False).out_path().name == "benchmark.json"
    full = load_config(quick=False)
    assert full.protocol == "pretrained" and full.seeds == (0, 1, 2, 3, 4) and full.regime == "discriminative"
    easy = load_config(quick=False, regime="easy")
    assert easy.pool is None and easy.out_path().name == "benchmark-easy.json" and len(easy.seeds) >= 3
    assert set(full.methods) >= {"scratch", "scratch_pseudo", "kd", "takd", "dgkd", "skd"}
    tasks = plan(full)
    assert ("methods", 10.0, "skd", 2) in tasks
    assert not any(p == "sweep" and b == 10.0 for p, b, _, _ in tasks)  # the main table already has them
    assert {b for p, b, _, _ in tasks if p == "sweep"} == set(full.sweep_budgets) - {full.budget} != set()
    assert load_config(quick=False, data="/somewhere/UCF101").protocol == "all"


@pytest.mark.slow
def test_markdown_marks_an_incomplete_run(result):
    _, _, first, _, _ = result
    assert "INCOMPLETE" in markdown({**first, "complete": False})


@pytest.mark.slow
def test_markdown_shows_a_spread_only_where_there_are_several_seeds(result):
    _, _, first, _, _ = result
    assert len(first["seeds"]) == 2 and len(first["sweep"]["seeds"]) == 1
    methods, sweep = markdown(first).split("## Label-budget sweep")
    sweep = sweep.split("\n## ")[0]
    assert "| scratch | " in methods and "±" in methods.split("| scratch | ")[1].splitlines()[0]
    assert "| scratch | " in sweep and "±" not in sweep  # one seed: no "± 0.0" pretending to be a spread


@pytest.mark.slow
def test_parallel_jobs_fill_the_run_cache_that_a_single_job_then_reads(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))
    cfg = load_config(quick=True, data=str(tiny), teacher="labelled", teacher_epochs=1, epochs=1, seeds=[0],
                      methods=["scratch", "kd"], references=["scratch_same_steps"], ablations=[],
                      sweep_budgets=[], out=str(tmp_path / "bench.json")).replace(pool=None)
    parallel = run_benchmark(cfg, progress=False, jobs=2)
    single = run_benchmark(cfg, progress=False, jobs=1)
    for name in ("scratch", "kd"):
        assert single["methods"][name]["acc"] == parallel["methods"][name]["acc"]
        assert single["methods"][name]["train_seconds"] == parallel["methods"][name]["train_seconds"]  # loaded
    assert single["scratch_same_steps"]["acc"] == parallel["scratch_same_steps"]["acc"]
    assert len(list((tmp_path / "runs").glob("distill-*"))) == 3  # scratch, kd, scratch_same_steps: once each
