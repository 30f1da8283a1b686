"""Weak labels, the multi-view ensemble, refinement and its metrics (kdlab.pseudo), and their plots."""

import math

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdlab.data import VideoFolder, generate_dataset, hflip  # noqa: E402
from kdlab.models import build_model  # noqa: E402
from kdlab.pseudo import (  # noqa: E402
    KINDS, PseudoLabeler, Predictions, WeakLabels, accuracy_at_coverage, accuracy_coverage_curve,
    class_thresholds, ema, expected_calibration_error, fit_temperature, inject_label_noise, knn_smooth, predict,
    refine, reliability_bins,
)
from kdlab.train import Supervised, fit  # noqa: E402
from kdlab.viz.pseudo import (  # noqa: E402
    plot_accuracy_coverage, plot_class_thresholds, plot_corrections, plot_reliability,
)


# ------------------------------------------------------------------------------------ label noise

@pytest.mark.parametrize("mode", ["symmetric", "pairflip"])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.33, 1.0])
def test_noise_corrupts_exactly_the_requested_fraction(mode, rate):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (300,), generator=g)
    indices = torch.randperm(300, generator=g)[:90]
    noisy = inject_label_noise(labels, indices, rate, mode=mode, num_classes=5, seed=3)
    changed = torch.nonzero(noisy != labels).flatten()
    assert len(changed) == round(rate * 90)
    assert set(changed.tolist()) <= set(indices.tolist())  # only the given indices are touched
    if mode == "pairflip":
        assert torch.equal(noisy[changed], (labels[changed] + 1) % 5)
    assert torch.equal(noisy, inject_label_noise(labels, indices, rate, mode=mode, num_classes=5, seed=3))


def test_noise_seed_changes_which_samples_and_symmetric_reaches_every_other_class():
    labels = torch.zeros(2000, dtype=torch.long)
    a = inject_label_noise(labels, torch.arange(2000), 0.5, num_classes=4, seed=0)
    b = inject_label_noise(labels, torch.arange(2000), 0.5, num_classes=4, seed=1)
    assert not torch.equal(a != 0, b != 0)
    counts = torch.bincount(a, minlength=4)
    assert counts[0] == 1000
    # Wrong labels are spread over the 3 other classes (about 333 each).
    assert all(abs(int(c) - 1000 / 3) < 80 for c in counts[1:])


def test_mirror_noise_goes_to_the_flip_partner_only():
    flip_map = [1, 0, 2, 3]  # MoveLeft <-> MoveRight; MoveUp, Grow mirror to themselves
    labels = torch.arange(4).repeat(25)
    noisy = inject_label_noise(labels, torch.arange(100), 0.3, mode="mirror", num_classes=4, flip_map=flip_map, seed=2)
    changed = noisy != labels
    assert int(changed.sum()) == 30
    assert torch.equal(noisy[changed], torch.tensor(flip_map)[labels[changed]])
    assert set(labels[changed].tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="mirror partner"):  # only 50 samples can be mirrored
        inject_label_noise(labels, torch.arange(100), 0.6, mode="mirror", num_classes=4, flip_map=flip_map)
    with pytest.raises(ValueError, match="unknown noise mode"):
        inject_label_noise(labels, torch.arange(100), 0.1, mode="blind", num_classes=4)


def test_weak_labels_keep_truth_apart():
    true = torch.arange(5).repeat(20)
    labelled = torch.arange(0, 100, 4)
    weak = WeakLabels.make(true, labelled, 0.2, num_classes=5, seed=0)
    assert torch.equal(weak.true, true)
    assert torch.equal(torch.nonzero(weak.labelled).flatten(), labelled)
    assert (weak.given[~weak.labelled] == -1).all()
    assert int(weak.corrupted.sum()) == 5 and weak.summary()["noise_rate"] == 0.2


class MarkedClips(Dataset):
    """Clips whose pixel [0, 0, 0, 0, 0] is the index and [0, 0, 0, 0, 1] is 1: a flip moves the marker."""

    flip_map = [1, 0, 2]

    def __init__(self, n, flip=False):
        self.n, self.flip = n, flip
        self.labels = [i % 3 for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        assert not self.flip, "a view must switch the base dataset's own flip off"
        clip = torch.zeros(3, 2, 4, 4)
        clip[0, 0, 0, 0], clip[0, 0, 0, 1] = float(i), 1.0
        return clip, self.labels[i], i


def test_label_view_flips_the_clip_and_maps_the_given_label():
    weak = WeakLabels(given=torch.tensor([1, 0, -1, 2, 0, 1]), true=torch.tensor([0, 0, 2, 2, 0, 1]), num_classes=3)
    view = weak.dataset(MarkedClips(6, flip=True), indices=range(6))
    assert view.flip  # inherited from the base, which no longer flips itself
    seen = set()
    for _ in range(20):
        for i in range(6):
            clip, label, index = view[i]
            flipped = clip[0, 0, 0, 1] == 0
            seen.add(bool(flipped))
            given = int(weak.given[index])
            assert label == (MarkedClips.flip_map[given] if flipped and given >= 0 else given)
            if flipped:
                assert clip[0, 0, 0, 2] == 1.0 and torch.equal(hflip(clip)[0, 0, 0, :2], torch.tensor([float(i), 1.0]))
    assert seen == {True, False}


# ------------------------------------------------------------------------------------ ensemble

class DirectionNet(nn.Module):
    """Knows its answer: 'left' when the brightness-weighted mean x falls over time, 'right' when it
    rises, 'still' when it stays. Classes: 0 MoveLeft, 1 MoveRight, 2 Still; flip_map [1, 0, 2]."""

    num_classes = 3

    def __init__(self, gain=2.0):
        super().__init__()
        self.gain = gain
        self.head = nn.Module()
        self.head.embed = nn.Identity()

    def forward(self, x):  # (B, 3, T, H, W)
        w = x.mean(1).clamp(min=0)  # (B, T, H, W) brightness
        xs = torch.arange(x.shape[-1], dtype=x.dtype)
        mean_x = (w.sum(2) * xs).sum(-1) / w.sum((2, 3)).clamp(min=1e-6)  # (B, T)
        slope = mean_x[:, -1] - mean_x[:, 0]
        feats = self.head.embed(torch.stack([slope, mean_x.mean(1)], 1))
        s = feats[:, 0] * self.gain
        return torch.stack([-s, s, 1.0 - s.abs()], 1)


class Bars(Dataset):
    """A bright bar moving left (label 0), right (1) or standing still (2) over T=6 frames of 12 x 12,
    off-centre so that a flip changes where it is as well as where it goes."""

    flip_map = [1, 0, 2]

    def __init__(self, labels):
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        clip = torch.zeros(3, 6, 12, 12)
        for t in range(6):
            x = {0: 8 - t, 1: 2 + t, 2: 3}[self.labels[i]]
            clip[:, t, 3:9, x] = 1.0
        return clip, self.labels[i], i


def test_ensemble_maps_flipped_predictions_through_flip_map():
    data = Bars([0, 1, 2, 0, 1, 2, 0])
    model = DirectionNet()
    x = torch.stack([data[i][0] for i in range(len(data))])
    p_id, p_flip = model(x).softmax(1), model(hflip(x)).softmax(1)
    # The model is mirror-equivariant: a mirrored left-mover is a right-mover.
    assert (p_flip.argmax(1) == torch.tensor([1, 0, 2, 1, 0, 2, 1])).all()

    mapped = predict(model, data, views=("identity", "flip"), embed="head.embed")
    expected = (p_id + p_flip[:, [1, 0, 2]]) / 2  # p_orig[c] = p_flipped[flip_map[c]]
    assert torch.allclose(mapped.probs, expected, atol=1e-6)
    assert (mapped.probs.argmax(1) == torch.tensor(data.labels)).all()
    assert torch.allclose(mapped.view_probs("flip"), p_flip[:, [1, 0, 2]], atol=1e-6)
    assert mapped.embeddings.shape == (7, 2) and torch.equal(mapped.index, torch.arange(7))

    blind = predict(model, data, views=("identity", "flip"), blind_flip=True, embed=None)
    assert torch.allclose(blind.probs, (p_id + p_flip) / 2, atol=1e-6)
    movers = torch.tensor(data.labels) < 2
    # The trap: averaging a view with its mirror without the map makes left and right equally likely.
    assert torch.allclose(blind.probs[movers, 0], blind.probs[movers, 1], atol=1e-6)
    assert (mapped.probs[movers].max(1).values > blind.probs[movers].max(1).values + 0.3).all()


def test_ensemble_rows_follow_the_base_index_and_restore_the_mode():
    model = DirectionNet().train()
    data = Subset(Bars([0, 1, 2, 0, 1]), [4, 1, 3])
    preds = predict(model, data, embed=None)
    assert torch.equal(preds.index, torch.tensor([4, 1, 3])) and preds.members.shape == (3, 2, 1, 3)
    assert model.training
    with pytest.raises(ValueError, match="no mirrored class"):
        predict(model, data, flip_map=[1, 0, -1], embed=None)
    with pytest.raises(ValueError, match="views"):
        predict(model, data, views=("identity", "rotate"), embed=None)
    with pytest.raises(ValueError, match="clips=2"):
        predict(model, data, clips=2, embed=None)


# ------------------------------------------------------------------------------------ refinement pieces

def test_ema_formula_and_running_state():
    old, new = torch.rand(6, 3), torch.rand(6, 3)
    assert torch.allclose(ema(old, new, 0.7), 0.7 * old + 0.3 * new)
    weak = WeakLabels(torch.full((6,), -1), torch.zeros(6, dtype=torch.long), 3)

    def preds(p):
        return Predictions(p, p[:, None, None], None, torch.arange(6), ("identity",), 1)

    labeler = PseudoLabeler(weak, momentum=0.6, knn=0)
    p1, p2, p3 = (torch.rand(6, 3).softmax(1) for _ in range(3))
    assert torch.equal(labeler.update(preds(p1)).probs, p1)  # the first model starts the average
    labeler.update(preds(p2))
    labeler.update(p3, momentum=0.25)  # a plain tensor in the state's row order works too
    assert torch.allclose(labeler.state.probs, 0.25 * (0.6 * p1 + 0.4 * p2) + 0.75 * p3)
    assert labeler.rounds == 3
    with pytest.raises(ValueError, match="other videos"):
        labeler.update(Predictions(p1, p1[:, None, None], None, torch.arange(6).flip(0), ("identity",), 1))
    with pytest.raises(TypeError, match="unknown refinement setting"):
        PseudoLabeler(weak, knn_k=3)


def test_labeler_state_dict_round_trips_through_a_weights_only_checkpoint(tmp_path):
    from kdlab.io import atomic_save, load_checkpoint

    weak = WeakLabels(torch.tensor([0, -1, 1, -1]), torch.tensor([0, 1, 1, 0]), 2)
    p = torch.rand(4, 2).softmax(1)
    labeler = PseudoLabeler(weak, momentum=0.5, knn=0)
    with pytest.raises(RuntimeError, match="nothing to save"):
        labeler.state_dict()
    labeler.update(Predictions(p, p[:, None, None], torch.rand(4, 3), torch.arange(4), ("identity",), 1))
    labeler.update(torch.rand(4, 2).softmax(1))
    atomic_save({**labeler.state_dict(), "temperature": 1.5}, tmp_path / "state.pt")
    other = PseudoLabeler(weak, momentum=0.5, knn=0)
    other.load_state_dict(load_checkpoint(tmp_path / "state.pt"))  # the extra key is ignored
    assert other.rounds == 2 and other.state.views == ("identity",)
    for a, b in zip(other.state_dict().values(), labeler.state_dict().values()):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
    assert torch.equal(other.refine(temperature=1.5).hard, labeler.refine(temperature=1.5).hard)


def test_labeler_step_predicts_remembers_and_refines():
    data = Bars([0, 1, 2, 0, 1, 2])
    weak = WeakLabels(torch.tensor([0, -1, -1, -1, 1, -1]), torch.tensor(data.labels), 3)
    labeler = PseudoLabeler(weak, momentum=0.5, quantile=0.0, knn=0)
    first = labeler.step(DirectionNet(gain=0.2), data)
    second = labeler.step(DirectionNet(gain=2.0), data)  # a newer, more confident model
    p_old = predict(DirectionNet(gain=0.2), data).probs
    p_new = predict(DirectionNet(gain=2.0), data).probs
    assert torch.allclose(labeler.state.probs, 0.5 * p_old + 0.5 * p_new, atol=1e-6)
    assert torch.allclose(second.ensemble, labeler.state.probs)
    movers = [1, 3]  # unlabelled; the gain changes how sure the model is about a moving bar
    assert (second.confidence[movers] > first.confidence[movers]).all()
    assert (second.hard[second.mask] == weak.true[second.mask]).all()


def test_knn_smoothing_excludes_self_and_repairs_an_outlier():
    emb = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.98, -0.1], [0.0, 1.0], [0.1, 0.99], [-0.1, 0.98]])
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9]])
    nearest_other = knn_smooth(probs, emb, k=1, alpha=1.0)
    sim = F.normalize(emb, dim=1) @ F.normalize(emb, dim=1).T
    sim.fill_diagonal_(-2)
    assert torch.allclose(nearest_other, probs[sim.argmax(1)])
    smoothed = knn_smooth(probs, emb, k=2, alpha=0.5)
    assert torch.allclose(smoothed.sum(1), torch.ones(6))
    assert torch.allclose(smoothed[2], 0.5 * probs[2] + 0.25 * (probs[0] + probs[1]))
    assert smoothed[2].argmax() == 0  # the odd one out in cluster 0 now agrees with its neighbours
    assert torch.equal(knn_smooth(probs, emb, k=10, alpha=0.0), probs)


def test_thresholds_are_per_class_and_an_unsure_class_still_gets_labels():
    g = torch.Generator().manual_seed(0)
    pred = torch.arange(4).repeat_interleave(25)
    conf = torch.cat([0.93 + 0.06 * torch.rand(75, generator=g), 0.35 + 0.3 * torch.rand(25, generator=g)])
    thr = class_thresholds(conf, pred, 5, tau=0.9, quantile=0.5)
    assert torch.allclose(thr[:3], torch.full((3,), 0.9))  # confident classes keep tau
    assert thr[3] == pytest.approx(float(np.quantile(conf[75:].numpy(), 0.5)), abs=1e-6)
    assert thr[4] == 0.9  # nobody predicts class 4
    accepted = conf >= thr[pred]
    assert int((accepted & (pred == 3)).sum()) >= 12  # half of the unsure class, not none
    assert int((conf[pred == 3] >= 0.9).sum()) == 0  # a single global tau would starve it


def synthetic_case():
    """12 videos of 3 classes: 6 labelled (two wrong), 6 unlabelled; predictions are hand-made."""
    true = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    given = torch.tensor([0, 1, 2, 1, 0, 2, -1, -1, -1, -1, -1, -1])  # videos 3 and 4 carry wrong labels
    probs = torch.full((12, 3), 0.02)
    probs[torch.arange(12), true] = 0.96
    probs[4] = torch.tensor([0.40, 0.55, 0.05])  # right but unsure on video 4: its wrong label stays
    probs[10] = torch.tensor([0.30, 0.40, 0.30])  # an unsure unlabelled video
    preds = Predictions(probs, probs[:, None, None], None, torch.arange(12), ("identity",), 1)
    return WeakLabels(given, true, 3), preds


def test_refine_corrects_confident_contradictions_and_reports_them():
    weak, preds = synthetic_case()
    pl = refine(preds, weak, knn=0, tau=0.9, quantile=1.0, correct_tau=0.9)
    assert pl.kind[3] == KINDS.index("corrected") and pl.given[3] == 0 and pl.original[3] == 1
    assert pl.kind[4] == KINDS.index("given") and pl.given[4] == 0  # not confident enough to overturn
    assert pl.where("pseudo").tolist() == [False] * 6 + [True] * 4 + [False, True]
    assert not pl.mask[10] and pl.weights[10] == 0 and pl.hard[10] == -1
    assert torch.allclose(pl.weights[6:10], preds.probs[6:10].max(1).values)
    assert (pl.weights[[0, 1, 2, 4, 5]] == 1).all()
    m = pl.metrics(weak.true)
    assert (m["corrections"], m["corrections_right"], m["noisy_given"], m["noisy_fixed"]) == (1, 1, 2, 1)
    assert m["given_accuracy_before"] == pytest.approx(4 / 6) and m["given_accuracy_after"] == pytest.approx(5 / 6)
    assert m["pseudo_coverage"] == pytest.approx(5 / 6) and m["pseudo_accuracy"] == 1.0
    dropped = refine(preds, weak, knn=0, correction="drop")
    assert dropped.kind[3] == KINDS.index("dropped") and not dropped.mask[3] and dropped.given[3] == -1
    kept = refine(preds, weak, knn=0, correction="off")
    assert kept.given[3] == 1 and kept.metrics(weak.true)["corrections"] == 0


def test_refined_targets_plug_into_the_training_loss():
    weak, preds = synthetic_case()
    pl = refine(preds, weak, knn=0, quantile=1.0)
    objective = Supervised(**pl.targets())
    logits = torch.randn(12, 3)
    index = torch.arange(12)
    loss = objective.forward(lambda x: logits, (torch.zeros(12, 3, 1, 1, 1), pl.hard, index))[0]["ce"]
    # Independent formula: weighted mean over videos with a target of the soft cross-entropy.
    keep = pl.weights > 0
    per = -(pl.soft * logits.log_softmax(1)).sum(1)
    assert torch.allclose(loss, (pl.weights[keep] * per[keep]).sum() / pl.weights[keep].sum())
    view = pl.dataset(Bars([0, 1, 2] * 4))
    assert len(view) == int(pl.mask.sum()) and all(view[i][1] == pl.hard[view[i][2]] for i in range(len(view)))


# ------------------------------------------------------------------------------------ metrics

def test_calibration_metrics_against_independent_formulas():
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(500, 4, generator=g).mul(2).softmax(1)
    labels = torch.randint(0, 4, (500,), generator=g)
    conf, pred = probs.max(1)
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        inside = (conf >= lo) & ((conf < hi) if b < 9 else (conf <= hi))
        if inside.any():
            ece += inside.float().mean() * ((pred[inside] == labels[inside]).float().mean() - conf[inside].mean()).abs()
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(float(ece), abs=1e-4)
    r = reliability_bins(probs, labels, 10)
    assert int(r["count"].sum()) == 500

    correct = pred == labels
    curve = accuracy_coverage_curve(conf, correct)
    assert curve["coverage"][-1] == 1 and curve["accuracy"][-1] == pytest.approx(correct.float().mean().item())
    assert (curve["threshold"][1:] <= curve["threshold"][:-1]).all()
    top = conf.argsort(descending=True)[:100]
    assert accuracy_at_coverage(conf, correct, 0.2) == pytest.approx(correct[top].float().mean().item())


def test_fit_temperature_recovers_the_inverse_of_a_known_sharpening():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6000, 5, generator=g) * 1.5
    labels = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)  # calibrated by construction
    overconfident = (logits / 0.5).softmax(1)
    assert fit_temperature(overconfident, labels) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(logits.softmax(1), labels) == pytest.approx(1.0, rel=0.1)


# ------------------------------------------------------------------------------------ plots

def test_plots_return_figures_that_show_the_numbers():
    weak, preds = synthetic_case()
    pl = refine(preds, weak, knn=0, quantile=1.0)
    fig = plot_accuracy_coverage(pl, weak.true, others={"single view": preds.probs})
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # P, S, the single view, the operating point
    x, y = ax.lines[-1].get_data()
    m = pl.metrics(weak.true)
    assert (x[0], y[0]) == pytest.approx((m["pseudo_coverage"], m["pseudo_accuracy"]))
    fig2 = plot_class_thresholds(pl, ["MoveLeft", "MoveRight", "Grow"])
    heights = [p.get_height() for p in fig2.axes[0].patches]
    assert heights == pytest.approx(pl.thresholds.tolist())
    fig3 = plot_reliability({"before": preds.probs, "after": pl.smoothed}, weak.true)
    assert "ECE" in fig3.axes[0].get_legend().get_texts()[1].get_text()
    fig4 = plot_corrections(pl, weak.true)
    bars = [p.get_height() for p in fig4.axes[0].patches]
    assert bars[:2] == [m["corrections_right"], m["corrections"] - m["corrections_right"]]
    assert bars[-1] == 1  # video 4's wrong label stayed
    for f in (fig, fig2, fig3, fig4):
        assert isinstance(f, plt.Figure)
        plt.close(f)


# ------------------------------------------------------------------------------------ learning

CLASSES = ["MoveLeft", "MoveRight", "MoveUp", "Grow"]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A teacher trained on its own clean videos, predicting a separate weakly labelled set."""
    base = tmp_path_factory.mktemp("pseudo")
    common = dict(classes=CLASSES, frames=8, size=32, difficulty=1.0, progress=False)
    teacher_root = generate_dataset(base / "teacher", train_per_class=40, test_per_class=10, seed=1, **common)
    weak_root = generate_dataset(base / "weak", train_per_class=40, test_per_class=1, seed=0, **common)
    vf = dict(frames=8, size=32, cache=True, progress=False)
    teacher_train = VideoFolder(teacher_root, "train", sampling="random", flip=True, **vf)
    teacher_val = VideoFolder(teacher_root, "test", **vf)  # held out: only for the temperature
    videos = VideoFolder(weak_root, "train", **vf)
    labelled = torch.randperm(len(videos), generator=torch.Generator().manual_seed(1))[: int(0.4 * len(videos))]
    weak = WeakLabels.make(videos.labels, labelled, 0.3, mode="mirror", num_classes=4, flip_map=videos.flip_map)

    torch.manual_seed(0)
    model = build_model("student", 4)
    fit(model, teacher_train, epochs=10, batch_size=16, lr=3e-3, progress=False)
    temperature = fit_temperature(predict(model, teacher_val, clips=4), torch.tensor(teacher_val.labels))
    return {
        "model": model,
        "videos": videos,
        "weak": weak,
        "single": predict(model, videos, clips=1, views=("identity",)),
        "ensemble": predict(model, videos, clips=4),
        "blind": predict(model, videos, clips=4, blind_flip=True),
        "temperature": temperature,
    }


def accuracy(probs, true):
    return (probs.argmax(1) == true).float().mean().item()


def test_multi_view_ensemble_beats_one_view_and_the_blind_flip_hurts_mirrored_motions(learned):
    true = learned["weak"].true
    single, ens, blind = learned["single"], learned["ensemble"], learned["blind"]
    assert accuracy(ens.probs, true) > accuracy(single.probs, true)
    mirrored = true < 2  # MoveLeft, MoveRight
    assert accuracy(blind.probs[mirrored], true[mirrored]) < accuracy(ens.probs[mirrored], true[mirrored]) - 0.1


def test_ensemble_on_a_subset_reads_the_same_clips(learned):
    ens = learned["ensemble"]
    part = predict(learned["model"], Subset(learned["videos"], [5, 2]), clips=4)
    assert torch.equal(part.index, torch.tensor([5, 2]))
    assert torch.allclose(part.probs, ens.probs[[5, 2]], atol=1e-5)  # deterministic clips, whatever the batch


def test_refinement_beats_the_raw_argmax_and_corrections_are_mostly_right(learned):
    weak, single = learned["weak"], learned["single"]
    pl = refine(learned["ensemble"], weak, temperature=learned["temperature"])
    m = pl.metrics(weak.true)
    unl = weak.given < 0
    true = weak.true
    raw_conf, raw_pred = single.probs.max(1)
    raw_full = (raw_pred == true)[unl].float().mean().item()
    # At equal coverage (all unlabelled videos) the refined labels are better...
    assert (pl.best_guess == true)[unl].float().mean().item() > raw_full
    # ...and the thresholded pseudo-labels beat the raw argmax at their own coverage too.
    raw_same = accuracy_at_coverage(raw_conf[unl], (raw_pred == true)[unl], m["pseudo_coverage"])
    assert m["pseudo_accuracy"] >= raw_same and m["pseudo_accuracy"] > raw_full
    assert m["pseudo_coverage"] >= 0.5
    assert m["corrections"] >= 3 and m["corrections_right"] > m["corrections"] - m["corrections_right"]
    assert m["given_accuracy_after"] > m["given_accuracy_before"]
    assert math.isfinite(m["ece"]) and m["ece"] < m["ece_ensemble"]  # calibration helped
