"""The distillation objective: adapters, schedule, frozen teacher, errors, every method, learning."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from kdlab.distill import METHODS, Distillation, Schedule, SubstageDistillation, make_objective
from kdlab.models import build_model
from kdlab.train import NonFiniteLossError, evaluate, fit

from toydata import MovingBar

TOY = (3, 8, 16, 16)  # MovingBar clips


# Small members of the family, so that the mechanics tests take seconds.
TINY = {"teacher": dict(widths=(12, 16, 24, 32), stem_width=8), "student": dict(widths=(4, 8, 8, 12), stem_width=4)}


def pair(teacher=None, student=None, classes=2, seed=0):
    """(teacher, student); by default the tiny pair, else kdlab's models by name."""
    torch.manual_seed(seed)
    t = build_model("teacher", classes, **TINY["teacher"]) if teacher is None else build_model(teacher, classes)
    s = build_model("student", classes, **TINY["student"]) if student is None else build_model(student, classes)
    return t, s


def batch_of(dataset, n, unlabelled=()):
    clips, labels, index = zip(*(dataset[i] for i in range(n)))
    labels = torch.tensor(labels)
    labels[list(unlabelled)] = -1
    return torch.stack(clips), labels, torch.tensor(index)


def teacher_snapshot(teacher):
    return {k: v.detach().clone() for k, v in teacher.state_dict().items()}


# ------------------------------------------------------------------------------- adapters

@pytest.mark.parametrize("teacher_name, student_name", [
    ("teacher", "student"), ("assistant", "student"), ("teacher", "assistant"), ("r3d_18", "student"),
])
def test_adapters_make_every_stage_pair_compatible(teacher_name, student_name):
    teacher, student = pair(teacher_name, student_name, classes=3)
    # The real stage shapes, measured here independently of the objective.
    x = torch.randn(2, 3, 8, 32, 32)
    feats = {}
    for name, model in (("s", student), ("t", teacher)):
        model.eval()
        hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n, k=name: feats.__setitem__((k, n), o))
                 for n in model.stage_names]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
    for grid in ("coarser", "teacher"):
        obj = Distillation(teacher, student, feature_loss="mse", pairing="cka_softmax", grid=grid)
        assert len(obj.adapters) == len(student.stage_names) * len(teacher.stage_names)
        check_adapters(obj, feats, student.stage_names, teacher.stage_names, grid)


def expected_grid(s_size, t_size, grid, cap=128):
    """The teacher's (T, H, W) or the per-axis minimum, then H and W halved until T*H*W <= cap."""
    size = list(t_size) if grid == "teacher" else [min(a, b) for a, b in zip(s_size, t_size)]
    while size[0] * size[1] * size[2] > cap:
        size = [size[0], max(1, size[1] // 2), max(1, size[2] // 2)]
    return size


def check_adapters(obj, feats, student_stages, teacher_stages, grid):
    for i, s in enumerate(student_stages):
        for j, t in enumerate(teacher_stages):
            f_s, f_t = feats["s", s], feats["t", t]
            out = obj.adapters[f"{i}_{j}"](f_s)
            f_t = obj._teacher_on_grid(f_t, tuple(f_s.shape[1:]), tuple(f_t.shape[1:]))
            assert out.shape == f_t.shape, (s, t)
            assert out.shape[1] == feats["t", t].shape[1]  # the teacher's channels
            assert list(out.shape[2:]) == expected_grid(f_s.shape[2:], feats["t", t].shape[2:], grid)
            assert torch.isfinite(F.mse_loss(out, f_t))


def test_channel_free_losses_only_resample_positions():
    teacher, student = pair("r3d_18", "student", classes=3)
    obj = Distillation(teacher, student, feature_loss="at", logit_loss=None)
    for adapter in obj.adapters.values():
        assert sum(p.numel() for p in adapter.parameters()) == 0
    x, y = torch.randn(2, 3, 8, 32, 32), torch.tensor([0, 2])
    terms, _ = obj(student, (x, y, torch.arange(2)))
    assert set(terms) == {"label", *(f"feat/{s}" for s in student.stage_names)}
    assert all(torch.isfinite(v) for v in terms.values())


# ------------------------------------------------------------------------------- schedule

def expected_terms(epoch, stages, phase_len):
    k = min(epoch // phase_len + 1, len(stages))
    return {"label", *(f"feat/{s}" for s in stages[:k])} | ({"kd"} if k == len(stages) else set())


def test_progressive_schedule_switches_stages_on_shallow_to_deep_and_kd_last():
    teacher, student = pair()
    data = MovingBar(8)
    obj = SubstageDistillation(teacher, student, phase_epochs=2, clip_shape=TOY, probe=data)
    stages = student.stage_names
    batch = batch_of(data, 4)
    for epoch in range(9):
        obj.on_epoch_start(epoch=epoch, model=student)
        terms, _ = obj(student, batch)
        assert set(terms) == expected_terms(epoch, stages, 2), epoch
        assert obj.epoch_record()["phase"] == min(epoch // 2 + 1, 4)


def test_joint_schedule_switches_everything_on_at_once():
    teacher, student = pair()
    obj = SubstageDistillation(teacher, student, schedule="joint", clip_shape=TOY, probe=MovingBar(8))
    obj.on_epoch_start(epoch=0, model=student)
    terms, _ = obj(student, batch_of(MovingBar(4), 4))
    assert set(terms) == {"label", "kd", *(f"feat/{s}" for s in student.stage_names)}


def test_schedule_phase_lengths():
    stages = ["a", "b", "c"]
    # the first phases share the first half of the epochs, the last phase runs the rest
    assert [p.index for p in Schedule("progressive", stages, epochs=12).table(12)] == [1] * 3 + [2] * 3 + [3] * 6
    assert [p.index for p in Schedule("progressive", stages, epochs=3).table(3)] == [1, 2, 3]
    table = Schedule("progressive", stages, phase_epochs=[1, 3]).table(6)
    assert [p.stages for p in table] == [("a",)] + [("a", "b")] * 3 + [("a", "b", "c")] * 2
    assert [p.logits for p in table] == [False] * 4 + [True] * 2
    assert all(p.logits and p.stages == tuple(stages) for p in Schedule("joint", stages).table(3))
    with pytest.raises(ValueError, match="phase_epochs=.*or epochs="):
        Schedule("progressive", stages)
    with pytest.raises(ValueError, match="epochs=2 is fewer than the 3 phases"):
        Schedule("progressive", stages, epochs=2)
    with pytest.raises(ValueError, match="3 phases"):
        Schedule("progressive", stages, phase_epochs=[1, 1, 1, 1])


# ------------------------------------------------------------------------------- frozen teacher

def test_teacher_is_frozen_unsaved_and_evaluated_before_distillation(tmp_path):
    teacher, student = pair()
    train, val = MovingBar(24), MovingBar(16, seed=1)
    teacher.train()  # the objective must put it in eval mode itself
    before = teacher_snapshot(teacher)
    obj = SubstageDistillation(teacher, student, schedule="joint", clip_shape=TOY, val_data=val)
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher_params & {id(p) for p in obj.parameters()}
    history = fit(student, train, val, objective=obj, epochs=1, batch_size=8, progress=False, out_dir=tmp_path)
    after = teacher.state_dict()
    for key, value in before.items():  # weights, running_mean/var and num_batches_tracked
        assert torch.equal(value, after[key]), key
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None for p in obj.adapters.parameters())  # the adapters did train
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["objective"]
    assert saved and all(k.startswith("adapters.") for k in saved)
    assert history.records[0]["teacher/val_top1"] == pytest.approx(evaluate(teacher, val)["top1"])
    assert {"train/label", "train/kd", "train/feat/stage4", "W/stage1-stage1", "R/stage4-stage4"} <= set(history.last)


def test_moving_the_objective_moves_the_teacher_it_does_not_own():
    teacher, student = pair()
    obj = make_objective("kd", teacher, student)
    obj.to(torch.float64)
    assert {p.dtype for p in teacher.parameters()} == {torch.float64}
    assert obj.teacher is teacher and "teacher" not in dict(obj.named_children())


def test_resumed_distillation_matches_an_uninterrupted_one(tmp_path):
    train = MovingBar(24)

    def run(out, **kw):
        teacher, student = pair(seed=0)
        obj = SubstageDistillation(teacher, student, phase_epochs=1, clip_shape=TOY)
        fit(student, train, objective=obj, epochs=2, batch_size=8, progress=False, out_dir=out, **kw)
        return student

    full = run(tmp_path / "full")
    run(tmp_path / "cut", stop_after_epoch=0)
    resumed = run(tmp_path / "cut")
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


# ------------------------------------------------------------------------------- pairings

def test_pairings_give_the_weights_their_rules_promise():
    teacher, student = pair()
    data = MovingBar(16)
    S = len(student.stage_names)
    for rule in ("identity", "cka_softmax", "monotone", "learned"):
        obj = Distillation(teacher, student, feature_loss="fd", pairing=rule, clip_shape=TOY, probe=data, tau=0.1)
        obj.on_epoch_start(epoch=0, model=student)
        W = obj.pairing_weights().detach()
        assert torch.allclose(W.sum(1), torch.ones(S), atol=1e-5), rule
        if rule == "identity":
            assert torch.equal(W, torch.eye(S))
        if rule == "cka_softmax":
            assert torch.allclose(W, torch.softmax(obj.R / 0.1, dim=1).float(), atol=1e-6)
        if rule == "monotone":
            cols = W.argmax(1).tolist()
            assert ((W == 0) | (W == 1)).all() and cols == sorted(cols)
        if rule == "learned":
            assert obj.learned.logits.requires_grad
            assert torch.allclose(W, torch.softmax(obj.R / 0.1, dim=1).float(), atol=1e-5)  # starts at R / tau
    # A fixed matrix is used as given.
    W = torch.zeros(S, S)
    W[:, -1] = 1.0
    obj = Distillation(teacher, student, feature_loss="fd", pairing=W, clip_shape=TOY)
    assert set(obj.adapters) == {f"{i}_{S - 1}" for i in range(S)}
    # Pairs under min_pair_weight are skipped: their adapters get no gradient.
    W = torch.eye(S) * 0.995
    W[0, 1] = 0.005
    obj = Distillation(teacher, student, feature_loss="fd", pairing=W, clip_shape=TOY, logit_loss=None)
    terms, _ = obj(student, batch_of(data, 4))
    sum(terms.values()).backward()
    assert all(p.grad is None for p in obj.adapters["0_1"].parameters())
    assert all(p.grad is not None for p in obj.adapters["0_0"].parameters())


def test_learned_pairing_is_trained_with_the_student():
    teacher, student = pair()
    obj = Distillation(teacher, student, feature_loss="fd", pairing="learned", clip_shape=TOY)
    fit(student, MovingBar(16), objective=obj, epochs=1, batch_size=8, progress=False)
    start = (obj.correlation_history[0] / 0.1).float()  # the logits start at R / tau
    assert obj.learned.logits.grad is not None
    assert not torch.allclose(obj.learned.logits.detach(), start)


# ------------------------------------------------------------------------------- bad configurations

def test_bad_configurations_fail_early_with_the_valid_options():
    teacher, student = pair()
    with pytest.raises(ValueError, match=r"stage4x.*student stages: \['stage1'.*teacher stages: \['stage1'"):
        Distillation(teacher, student, feature_loss="fd", student_stages=["stage4x"], clip_shape=TOY)
    with pytest.raises(ValueError, match=r"unknown teacher stage.*student stages:.*teacher stages:"):
        Distillation(teacher, student, feature_loss="fd", teacher_stages=["layer9"], clip_shape=TOY)
    wrong_shape = r"shape \(2, 4\).*student stages \['stage1'.*teacher stages \['stage1'.*\(4, 4\)"
    with pytest.raises(ValueError, match=wrong_shape):
        Distillation(teacher, student, feature_loss="fd", pairing=torch.ones(2, 4), clip_shape=TOY)
    for kwargs, valid in [
        (dict(feature_loss="fdd"), "fd, mse, at"), (dict(feature_loss="fd", pairing="cka"), "identity, cka_softmax"),
        (dict(schedule="staged"), "progressive, joint"), (dict(logit_loss="hinton"), "kd, dkd"),
        (dict(embedding_loss="crd"), "rkd, pkt"), (dict(grid="student"), "coarser, teacher"),
        (dict(feature_loss="fd", fd_kind="kl"), "channel_softmax, gaussian, mmd"),
        (dict(schedule="progressive", epochs=4, logits_from="middle"), "last, first"),
    ]:
        with pytest.raises(ValueError, match=valid):
            Distillation(teacher, student, clip_shape=TOY, **kwargs)
    valid_methods = "scratch, kd, dkd, fitnet, at, sp, rkd, pkt, nst, skd"
    with pytest.raises(ValueError, match=f"unknown method 'crd'; valid: {valid_methods}"):
        make_objective("crd", teacher, student)
    with pytest.raises(ValueError, match="needs a teacher"):
        Distillation(None, student)
    obj = SubstageDistillation(teacher, student, schedule="joint", clip_shape=TOY, pairing="identity")
    with pytest.raises(ValueError, match=r"clip_shape=\(3, 8, 16, 16\)"):
        obj(student, (torch.randn(2, 3, 8, 32, 32), torch.tensor([0, 1]), torch.arange(2)))


def test_a_nan_term_is_caught_by_the_engine_naming_it():
    teacher, student = pair()
    calls = {"n": 0}

    def explodes_late(f_s, f_t):
        calls["n"] += 1
        value = F.mse_loss(f_s, f_t)
        return value * math.nan if calls["n"] > 6 else value

    obj = Distillation(teacher, student, feature_loss=explodes_late, pairing="identity",
                       student_stages=["stage2"], teacher_stages=["stage2"], clip_shape=TOY)
    with pytest.raises(NonFiniteLossError, match=r"'feat/stage2'.*epoch 1, step 2"):
        fit(student, MovingBar(32), objective=obj, epochs=2, batch_size=8, progress=False)


# ------------------------------------------------------------------------------- every method

def method_terms(method, stages):
    feats = {f"feat/{s}" for s in stages}
    return {"scratch": {"label"}, "kd": {"label", "kd"}, "dkd": {"label", "dkd"},
            "fitnet": {"label", "feat/stage2"}, "at": {"label"} | feats, "sp": {"label", "feat/stage4"},
            "rkd": {"label", "embed"}, "pkt": {"label", "embed"}, "nst": {"label"} | feats,
            "skd": {"label", "kd"} | feats}[method]


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_its_terms_and_a_finite_loss_with_grads_to_the_student_only(method):
    teacher, student = pair()
    data = MovingBar(8)
    obj = make_objective(method, teacher, student, clip_shape=TOY, schedule="joint", probe=data)
    obj.on_epoch_start(epoch=0, model=student)
    batch = batch_of(data, 6, unlabelled=[1, 4])
    terms, logits = obj(student, batch)
    assert set(terms) == method_terms(method, student.stage_names)
    assert logits.shape == (6, 2)
    loss = sum(terms.values())
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    if method == "fitnet":  # the regressor learns with the student
        assert all(p.grad is not None for p in obj.parameters())


def test_kd_term_is_the_weighted_hinton_loss_on_every_sample():
    teacher, student = pair()
    batch = batch_of(MovingBar(6), 6, unlabelled=[0, 2, 3, 5])
    terms, logits = make_objective("kd", teacher, student)(student, batch)
    teacher.eval()
    with torch.no_grad():
        p_t = torch.softmax(teacher(batch[0]) / 4, 1)
    log_p_s = torch.log_softmax(logits / 4, 1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean() * 16
    assert torch.allclose(terms["kd"], 0.9 * kl, rtol=1e-4, atol=1e-7)
    labelled = batch[1] >= 0
    assert torch.allclose(terms["label"], 0.1 * F.cross_entropy(logits[labelled], batch[1][labelled]), rtol=1e-5)


def test_soft_targets_and_sample_weights_reach_the_label_term():
    teacher, student = pair()
    batch = batch_of(MovingBar(4), 4, unlabelled=[0, 1, 2, 3])
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    terms, logits = make_objective("kd", teacher, student, soft_targets=soft, sample_weights=weights,
                                   label_weight=1.0)(student, batch)
    per = -(soft * torch.log_softmax(logits, 1)).sum(1)
    assert torch.allclose(terms["label"], (weights * per).sum() / weights.sum(), rtol=1e-5)


# ------------------------------------------------------------------------------- learning

@pytest.mark.slow
def test_substage_distillation_with_unlabelled_videos_beats_the_student_from_scratch(tmp_path):
    from kdlab.data import VideoFolder, generate_dataset
    from kdlab.weak_splits import MaskedLabels

    classes = ["MoveLeft", "MoveRight", "Grow", "RotateClockwise"]
    root = generate_dataset(tmp_path / "motion", classes=classes, train_per_class=24, test_per_class=25, frames=16,
                            size=32, difficulty=0.5, progress=False)
    common = dict(frames=8, size=32, cache=True, progress=False)
    train = VideoFolder(root, "train", sampling="random", flip=True, **common)
    test = VideoFolder(root, "test", **common)
    labelled = [i for c in range(4) for i in [j for j, y in enumerate(train.labels) if y == c][:3]]  # 3 per class
    everyone = list(range(len(train)))
    options = dict(batch_size=16, lr=3e-3, progress=False, seed=0)

    torch.manual_seed(0)
    teacher = build_model("assistant", 4)
    fit(teacher, train, epochs=10, **options)  # all 96 labels
    teacher_acc = evaluate(teacher, test)["top1"]

    scratch_acc, skd_acc = [], []
    for seed in (1, 2):  # the mean of two seeds: one run on 100 test videos moves by a few points
        run = {**options, "seed": seed, "batch_size": 8}  # more updates: 10 epochs are only ~12 steps each
        torch.manual_seed(seed)
        scratch = build_model("student", 4)
        fit(scratch, Subset(train, labelled), epochs=40, **run)  # about as many steps as the distilled run
        scratch_acc.append(evaluate(scratch, test)["top1"])

        torch.manual_seed(seed)
        student = build_model("student", 4)
        obj = SubstageDistillation(teacher, student, epochs=10, probe=Subset(train, everyone))
        history = fit(student, MaskedLabels(train, everyone, labelled), objective=obj, epochs=10, **run)
        skd_acc.append(evaluate(student, test)["top1"])
        assert [r["phase"] for r in history.records] == [1, 2, 3] + [4] * 7
    scratch_mean, skd_mean = sum(scratch_acc) / 2, sum(skd_acc) / 2
    print(f"teacher {teacher_acc:.1f}%, scratch {scratch_acc} -> {scratch_mean:.1f}%, "
          f"skd {skd_acc} -> {skd_mean:.1f}% (chance 25%)")
    assert teacher_acc >= 60.0
    assert skd_mean >= scratch_mean + 10.0


def test_the_no_feature_terms_ablation_is_kd_with_skds_weights_from_the_first_epoch():
    from kdlab.bench.config import TUNED_SKD
    from kdlab.bench.runner import ABLATION_CHANGES

    teacher, student = pair()
    data = MovingBar(6)
    batch = batch_of(data, 6, unlabelled=[1, 4])
    obj = make_objective("skd", teacher, student, clip_shape=TOY, probe=data, epochs=8,
                         **{**TUNED_SKD, **ABLATION_CHANGES["no_feature_terms"]})
    obj.on_epoch_start(epoch=0, model=student)
    terms, logits = obj(student, batch)
    assert set(terms) == {"label", "kd"}
    teacher.eval()
    with torch.no_grad():
        p_t = torch.softmax(teacher(batch[0]) / 4, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(logits / 4, 1))).sum(1).mean() * 16
    assert torch.allclose(terms["kd"], TUNED_SKD["logit_weight"] * kl, rtol=1e-4, atol=1e-7)
    labelled = batch[1] >= 0
    ce = F.cross_entropy(logits[labelled], batch[1][labelled])
    assert torch.allclose(terms["label"], TUNED_SKD["label_weight"] * ce, rtol=1e-5)
