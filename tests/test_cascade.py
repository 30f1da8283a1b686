"""kdlab.cascade: the capacity ladder, the dense objective, chain vs dense cascades, pseudo-labels, resume."""

import pytest
import torch

import kdlab.trained as trained_module  # where every run's fit is called
from kdlab.cascade import DenseDistillation, capacity_ladder, cascade, ladder_table, rung_names
from kdlab.distill import make_objective, weights_digest
from kdlab.io import load_checkpoint
from kdlab.models import SPECS, build_model
from kdlab.train import ResumeMismatchError
from toydata import tiny_splits, tiny_teacher


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("cascade"))


@pytest.fixture(scope="module")
def teacher(splits):
    return tiny_teacher(splits.num_classes).eval()


@pytest.fixture(scope="module")
def rungs(teacher):
    return capacity_ladder(teacher.spec, teacher.spec.replace(widths=(4, 4, 8, 8), stem_width=4), steps=1)


@pytest.fixture
def fit_calls(fit_spy):
    """The objective of every rung trained (fit calls of the cascade)."""
    return fit_spy(trained_module, record=lambda kwargs: kwargs["objective"])


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ----------------------------------------------------------------------------- the ladder

@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_the_ladder_falls_monotonically_and_roughly_geometrically(steps):
    ladder = capacity_ladder(SPECS["teacher"], SPECS["student"], steps=steps)
    rows = ladder_table(ladder)
    params, flops = [r["params"] for r in rows], [r["flops"] for r in rows]
    assert len(ladder) == steps + 2 and ladder[0] == SPECS["teacher"] and ladder[-1] == SPECS["student"]
    assert [r["name"] for r in rows] == rung_names(steps + 2)
    assert all(b < a for a, b in zip(params, params[1:])), params
    assert all(b < a for a, b in zip(flops, flops[1:])), flops
    # Geometric: every step divides the parameters by about the same factor (total ** 1 / (steps + 1)).
    ideal = (params[0] / params[-1]) ** (1 / (steps + 1))
    assert all(0.75 * ideal < a / b < 1.33 * ideal for a, b in zip(params, params[1:])), (params, ideal)


def test_the_ladder_rejects_what_it_cannot_interpolate():
    with pytest.raises(ValueError, match="parameters must fall"):
        capacity_ladder(SPECS["student"], SPECS["teacher"], steps=1)  # upside down
    with pytest.raises(ValueError, match="block"):
        capacity_ladder(SPECS["teacher"], SPECS["frame2d"], steps=1)
    with pytest.raises(ValueError, match="too many"):
        capacity_ladder(SPECS["student"], SPECS["student"].replace(widths=(7, 11, 23, 47)), steps=3)
    with pytest.raises(ValueError, match="steps"):
        capacity_ladder(SPECS["teacher"], SPECS["student"], steps=-1)


# ----------------------------------------------------------------------------- the dense objective

def test_dense_objective_averages_the_teachers_terms_with_one_student_pass(splits, teacher, rungs):
    torch.manual_seed(1)
    assistant = build_model(rungs[1], splits.num_classes).eval()
    student = build_model(rungs[2], splits.num_classes)
    clips = torch.randn(6, 3, 8, 32, 32)
    batch = (clips, torch.tensor([0, 1, -1, -1, 2, -1]), torch.arange(6))
    common = dict(clip_shape=(3, 8, 32, 32), schedule="joint", pairing="identity")
    parts = [make_objective("skd", teacher, student, **common),
             make_objective("skd", assistant, student, **common, label_weight=0.0)]
    dense = DenseDistillation(parts)

    passes = []
    handle = student.register_forward_hook(lambda *_: passes.append(1))
    torch.manual_seed(2)
    terms, logits = dense(student, batch)
    handle.remove()
    assert len(passes) == 1, "the student must run forward once per batch, whatever the number of teachers"
    loss = sum(terms.values())
    loss.backward()
    dense_grads = [p.grad.clone() for p in student.parameters()]
    student.zero_grad()

    # The oracle: each part on its own, label term once, distillation terms averaged over the 2 teachers.
    torch.manual_seed(2)
    first, _ = parts[0](student, batch)
    second, _ = parts[1](student, batch)
    assert "label" not in second and set(terms) == {"label", *(f"t0/{k}" for k in first if k != "label"),
                                                    *(f"t1/{k}" for k in second)}
    for k, v in first.items():
        expected = v if k == "label" else v / 2
        assert torch.allclose(terms["label" if k == "label" else f"t0/{k}"], expected, atol=1e-6), k
    for k, v in second.items():
        assert torch.allclose(terms[f"t1/{k}"], v / 2, atol=1e-6), k
    oracle = first["label"] + sum(v for k, v in first.items() if k != "label") / 2 + sum(second.values()) / 2
    oracle.backward()
    assert torch.allclose(loss, oracle, atol=1e-6)
    assert all(torch.allclose(a, p.grad, atol=1e-5) for a, p in zip(dense_grads, student.parameters()))


# ----------------------------------------------------------------------------- cascades

def test_chain_and_dense_differ_exactly_where_they_should(splits, teacher, rungs, fit_calls, tmp_path):
    run = dict(method="kd", epochs=2, views=2, progress=False)
    chain = cascade(splits, teacher, rungs, mode="chain", out_dir=tmp_path / "chain", **run)
    dense = cascade(splits, teacher, rungs, mode="dense", out_dir=tmp_path / "dense", **run)
    models = {"chain": chain.models, "dense": dense.models}

    # Rung 1 has only the teacher above it: chain and dense train the very same model.
    assert chain.rungs[1]["teachers"] == dense.rungs[1]["teachers"] == ["teacher"]
    assert same(chain.models[1], dense.models[1])
    # Rung 2: chain learns from the assistant alone, dense from the teacher *and* the assistant.
    assert chain.rungs[2]["teachers"] == ["assistant"]
    assert dense.rungs[2]["teachers"] == ["teacher", "assistant"]
    for name, result in (("chain", chain), ("dense", dense)):
        used = [models[name][["teacher", "assistant"].index(t)] for t in result.rungs[2]["teachers"]]
        assert result.rungs[2]["teacher_digests"] == [weights_digest(m) for m in used]
    objectives = fit_calls[-1], fit_calls[1]  # dense rung 2, chain rung 2
    assert isinstance(objectives[0], DenseDistillation) and not isinstance(objectives[1], DenseDistillation)
    assert [weights_digest(t) for t in objectives[0].teachers] == [weights_digest(m) for m in dense.models[:2]]
    assert weights_digest(objectives[1].teacher) == weights_digest(chain.models[1])
    record = dense.rungs[2]["history"][-1]
    assert "train/t0/kd" in record and "train/t1/kd" in record and "train/kd" not in record
    assert "train/kd" in chain.rungs[2]["history"][-1]
    assert not same(chain.final, dense.final)
    # The result the benchmark reads.
    info = dense.final_info
    assert dense.final is dense.models[-1] and info["name"] == "student"
    assert 0 <= info["test_top1"] <= 100 and 0 <= info["best_epoch_test_top1"] <= 100
    assert info["params"] == sum(p.numel() for p in dense.final.parameters())
    assert len(info["R"]["matrix"]) == 4 and len(info["R_teacher"]["matrix"][0]) == 4


def test_pseudo_labels_are_re_refined_after_every_rung(splits, teacher, rungs, fit_calls, tmp_path):
    run = dict(method="kd", epochs=1, views=2, progress=False)
    fresh = cascade(splits, teacher, rungs, out_dir=tmp_path / "refine", **run)
    kept = cascade(splits, teacher, rungs, out_dir=tmp_path / "keep", refine_pseudo=False, **run)
    assert len(fresh.pseudo) == len(kept.pseudo) == 3
    assert all(pl is kept.pseudo[0] for pl in kept.pseudo)
    states = [load_checkpoint(tmp_path / "refine" / "pseudo" / f"after-{k}.pt") for k in range(3)]
    assert [s["rounds"] for s in states] == [1, 2, 3]
    assert not torch.equal(states[0]["probs"], states[1]["probs"])  # the assistant's view was folded in
    assert torch.equal(fresh.pseudo[0].soft, kept.pseudo[0].soft)   # same teacher, same first labels
    assert fresh.rungs[2]["pseudo_in"] == fresh.rungs[1]["pseudo_out"]  # rung 2 trains on rung 1's labels
    # The labels reach the training set: rung 1's labelled videos are the pseudo-labelled ones.
    pl = fresh.pseudo[0]
    objective = fit_calls[0]
    assert torch.equal(objective.sample_weights, pl.weights.float())
    assert int(pl.mask.sum()) > len(splits.labelled)


def test_a_rerun_loads_finished_rungs_and_refuses_another_configuration(splits, teacher, rungs, fit_calls, tmp_path):
    run = dict(method="kd", epochs=1, views=None, progress=False, out_dir=tmp_path / "c")
    first = cascade(splits, teacher, rungs, **run)
    assert len(fit_calls) == 2
    again = cascade(splits, teacher, rungs, **run)
    assert len(fit_calls) == 2, "finished rungs are loaded, not trained again"
    assert same(first.final, again.final) and again.final_info["test_top1"] == first.final_info["test_top1"]
    with pytest.raises(ResumeMismatchError, match="epochs"):
        cascade(splits, teacher, rungs, **{**run, "epochs": 2})
    with pytest.raises(ValueError, match="unknown cascade mode"):
        cascade(splits, teacher, rungs, **run, mode="ring")
    with pytest.raises(ValueError, match="scratch"):
        cascade(splits, teacher, rungs, **{**run, "method": "scratch"})


# ----------------------------------------------------------------------------- modes as a table

def test_modes_are_a_table_of_which_rungs_teach_rung_k():
    from kdlab.cascade import MODES

    assert [MODES["chain"].teachers(k) for k in (1, 2, 3)] == [[0], [1], [2]]
    assert [MODES["dense"].teachers(k) for k in (1, 2, 3)] == [[0], [0, 1], [0, 1, 2]]
    assert all(mode.help for mode in MODES.values())


def test_a_mode_added_to_the_table_is_accepted_by_the_cascade(monkeypatch, tmp_path):
    from kdlab.cascade import MODES, Mode

    monkeypatch.setitem(MODES, "from_teacher", Mode(lambda k: [0], "every rung learns from the teacher"))
    splits = tiny_splits(tmp_path)
    teacher = tiny_teacher(splits.num_classes).eval()
    ladder = capacity_ladder(teacher.spec, teacher.spec.replace(widths=(4, 4, 8, 8), stem_width=4), steps=1)
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))
    result = cascade(splits, teacher, ladder, mode="from_teacher", method="kd", epochs=1, pseudo=False,
                     progress=False)
    assert [r.get("teachers") for r in result.rungs[1:]] == [["teacher"], ["teacher"]]
