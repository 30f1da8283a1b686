"""Linear CKA against independent formulas, the substage matrix R, pairings and their plots."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from kdlab.correlation import (  # noqa: E402
    PAIRING_RULES,
    CorrelationTracker,
    LearnedPairing,
    identity_pairing,
    linear_cka,
    make_pairing,
    monotone_assignment,
    monotone_matching,
    softmax_pairing,
    substage_correlation,
)
from kdlab.train import fit  # noqa: E402
from kdlab.viz.heatmaps import correlation_slider, plot_correlation, plot_correlation_history  # noqa: E402
from toydata import MovingBar  # noqa: E402


# ---------------------------------------------------------------- independent oracles (numpy)
def np_cka(X, Y):
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), HSIC = tr(K H L H) / (n - 1)^2."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n

    def hsic(K, L):
        return np.trace(K @ H @ L @ H) / (n - 1) ** 2

    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def np_hsic_u_statistic(K, L):
    """Unbiased HSIC as the plain U-statistic over ordered quadruples of distinct samples:
    mean of k_ij l_ij + k_ij l_qr - 2 k_ij l_iq (Song et al. 2012, before simplification)."""
    n = len(K)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
        count += 1
    return total / count


def np_cka_debiased(X, Y):
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    K, L = X @ X.T, Y @ Y.T
    return np_hsic_u_statistic(K, L) / np.sqrt(np_hsic_u_statistic(K, K) * np_hsic_u_statistic(L, L))


# ---------------------------------------------------------------- linear CKA
def test_cka_matches_numpy_formula_for_different_shapes():
    x = torch.randn(10, 4, 3, 5, 5)
    y = x[:, :2].mean(dim=2).repeat(1, 3, 1, 1) + 0.5 * torch.randn(10, 6, 5, 5)  # related, other shape
    got = linear_cka(x, y)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(np_cka(x.numpy(), y.numpy()), abs=1e-10)
    # pool="mean" = CKA of the features averaged over every axis after the channels.
    got_mean = linear_cka(x, y, pool="mean")
    assert got_mean.item() == pytest.approx(np_cka(x.double().mean(dim=(2, 3, 4)), y.double().mean(dim=(2, 3))), abs=1e-10)
    unrelated = linear_cka(x, torch.randn(10, 6, 5, 5)).item()
    assert got.item() > unrelated


def test_debiased_cka_matches_u_statistic():
    x, y = torch.randn(7, 5), torch.randn(7, 3)
    y[:, 0] += 2 * x[:, 0]
    assert linear_cka(x, y, debiased=True).item() == pytest.approx(np_cka_debiased(x, y), abs=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_invariances(debiased):
    x = torch.randn(32, 12, dtype=torch.float64)
    y = x @ torch.randn(12, 7, dtype=torch.float64) + 0.3 * torch.randn(32, 7, dtype=torch.float64)
    base = linear_cka(x, y, debiased=debiased).item()
    assert linear_cka(x, x, debiased=debiased).item() == pytest.approx(1.0, abs=1e-12)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    assert linear_cka(x @ Q, y, debiased=debiased).item() == pytest.approx(base, abs=1e-10)
    assert linear_cka(3.7 * x, 0.01 * y, debiased=debiased).item() == pytest.approx(base, abs=1e-10)
    assert linear_cka(x + 5.0, y - 2.0, debiased=debiased).item() == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, y, debiased=debiased).item() == pytest.approx(
        linear_cka(y, x, debiased=debiased).item(), abs=1e-12
    )
    # Not invariant to a general (non-orthogonal, non-isotropic) linear map: the test can fail.
    A = torch.diag(torch.linspace(0.1, 10, 12, dtype=torch.float64))
    assert abs(linear_cka(x @ A, y, debiased=debiased).item() - base) > 1e-3


def test_debiased_near_zero_for_independent_features_where_biased_is_not():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 512, generator=g), torch.randn(64, 512, generator=g)
    biased = linear_cka(x, y).item()
    debiased = linear_cka(x, y, debiased=True).item()
    assert biased > 0.5  # many features, few samples: the plain estimate is badly inflated
    assert abs(debiased) < 0.05


def test_cka_errors_and_constant_features():
    with pytest.raises(ValueError, match="batch sizes differ"):
        linear_cka(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="flatten"):
        linear_cka(torch.randn(4, 3), torch.randn(4, 3), pool="max")
    with pytest.raises(ValueError, match="at least 4"):
        linear_cka(torch.randn(3, 3), torch.randn(3, 3), debiased=True)
    assert linear_cka(torch.ones(6, 3), torch.randn(6, 3)).item() == 0.0


# ---------------------------------------------------------------- substage correlation
class Staged(nn.Module):
    def __init__(self, widths=(4, 6, 8)):
        super().__init__()
        self.stem = nn.Conv3d(3, widths[0], 3, padding=1)
        self.stage_names, c = [], widths[0]
        for i, w in enumerate(widths, start=1):
            block = nn.Sequential(nn.Conv3d(c, w, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(w), nn.ReLU())
            setattr(self, f"stage{i}", block)
            self.stage_names.append(f"stage{i}")
            c = w
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(c, 3))

    def forward(self, x):
        x = self.stem(x)
        for n in self.stage_names:
            x = getattr(self, n)(x)
        return self.head(x)

    def stages(self, x):
        out, x = [], self.stem(x)
        for n in self.stage_names:
            x = getattr(self, n)(x)
            out.append(x)
        return out


def _loader(n_batches=3, B=6):
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(B, 3, 2, 8, 8, generator=g), torch.zeros(B, dtype=torch.long)) for _ in range(n_batches)]


def test_substage_correlation_values_modes_and_no_side_effects():
    student, teacher = Staged((4, 6, 8)), Staged((5, 7, 9, 11))
    student.train()
    teacher.train()
    teacher.stage2.eval()  # a mixed state, which must come back as it was
    modes = {m: m.training for m in [*student.modules(), *teacher.modules()]}
    bn_before = student.stage1[1].running_mean.clone()
    loader = _loader(n_batches=4)

    res = substage_correlation(student, teacher, loader, batches=3, pool="mean")
    assert res.R.shape == (3, 4) and res.per_batch.shape == (3, 3, 4)
    assert res.student_names == ["stage1", "stage2", "stage3"]
    assert res.teacher_names == ["stage1", "stage2", "stage3", "stage4"]
    assert torch.allclose(res.R, res.per_batch.mean(dim=0))
    assert {m: m.training for m in [*student.modules(), *teacher.modules()]} == modes
    assert torch.equal(student.stage1[1].running_mean, bn_before)  # eval(): BN stats untouched
    assert all(p.grad is None for p in [*student.parameters(), *teacher.parameters()])

    # Each per-batch entry equals CKA of the eval-mode stage outputs, recomputed independently.
    student.eval()
    teacher.eval()
    with torch.no_grad():
        for b in range(3):
            fs, ft = student.stages(loader[b][0]), teacher.stages(loader[b][0])
            for i, j in itertools.product(range(3), range(4)):
                expect = np_cka(fs[i].double().mean(dim=(2, 3, 4)), ft[j].double().mean(dim=(2, 3, 4)))
                assert res.per_batch[b, i, j].item() == pytest.approx(expect, abs=1e-9)


def test_teacher_against_itself_has_unit_diagonal_and_explicit_names():
    teacher = Staged((4, 6, 8))
    res = substage_correlation(
        teacher, teacher, _loader(), batches=None, student_stages=["stem", "stage2"],
        teacher_stages=["stem", "stage1", "stage2"], pool="flatten",
    )
    assert res.per_batch.shape == (3, 2, 3)
    assert res.R[0, 0].item() == pytest.approx(1.0, abs=1e-9)
    assert res.R[1, 2].item() == pytest.approx(1.0, abs=1e-9)
    assert res.std.shape == (2, 3) and res.best_teacher_stage() == {"stem": "stem", "stage2": "stage2"}


def test_tracker_records_r_every_epoch_without_changing_the_training():
    """fit(on_epoch_end=tracker) stores R after each epoch; the trained weights are those of an
    untracked run with the same seed (tracking runs in eval mode and fit reseeds every epoch)."""
    teacher = Staged((5, 7, 9, 11))
    probe = torch.utils.data.DataLoader(MovingBar(12, seed=5), batch_size=6)
    train = MovingBar(24)

    def run(track: bool):
        torch.manual_seed(1)
        student = Staged((4, 6, 8))
        tracker = CorrelationTracker(student, teacher, probe, batches=None) if track else None
        if track:
            tracker.record(0)
        fit(student, train, epochs=3, batch_size=8, lr=1e-2, seed=1, progress=False, on_epoch_end=tracker)
        return student, tracker

    student, tracker = run(track=True)
    plain, _ = run(track=False)
    for (name, a), b in zip(student.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), f"tracking changed {name}"

    assert tracker.epochs == [0, 1, 2, 3] and len(tracker) == 4
    stack = tracker.stack()
    assert stack.shape == (4, 3, 4) and stack.dtype == torch.float64
    assert all(c.per_batch.shape == (2, 3, 4) for c in tracker.history)
    # The last record is R of the trained student, the first that of the untrained one.
    again = substage_correlation(student, teacher, probe, batches=None)
    assert torch.allclose(stack[-1], again.R, atol=1e-12)
    assert not torch.allclose(stack[0], stack[-1])
    # The history plugs straight into the plots.
    fig = plot_correlation_history(tracker.history, epochs=tracker.epochs)
    assert [ax.get_title() for ax in fig.axes if ax.get_title().startswith("epoch")] == [
        f"epoch {e}" for e in tracker.epochs
    ]
    plt.close("all")
    with pytest.raises(ValueError, match="nothing recorded"):
        CorrelationTracker(student, teacher, probe).stack()


# ---------------------------------------------------------------- pairings
def test_identity_pairing_is_proportional_depth():
    assert torch.equal(identity_pairing(4, 4), torch.eye(4))
    for S_s, S_t in itertools.product(range(1, 7), repeat=2):
        W = identity_pairing(S_s, S_t)
        assert W.shape == (S_s, S_t) and torch.equal(W.sum(dim=1), torch.ones(S_s))
        for i in range(S_s):
            # the shallowest teacher stage at least as deep (relative) as student stage i
            j = min(j for j in range(S_t) if (j + 1) / S_t >= (i + 1) / S_s - 1e-12)
            assert W[i, j] == 1.0
        assert W[-1, -1] == 1.0


def test_softmax_pairing_rows_and_ratios():
    R = torch.rand(3, 5, dtype=torch.float64)
    tau = 0.2
    W = softmax_pairing(R, tau)
    assert torch.allclose(W.sum(dim=1), torch.ones(3))
    for i in range(3):
        expected = np.exp(R[i].numpy() / tau) / np.exp(R[i].numpy() / tau).sum()
        assert np.allclose(W[i].numpy(), expected, atol=1e-6)
    assert torch.equal(softmax_pairing(R, 1e-4).argmax(dim=1), R.argmax(dim=1))
    with pytest.raises(ValueError, match="tau"):
        softmax_pairing(R, 0.0)


def test_monotone_matching_equals_brute_force():
    rng = np.random.default_rng(0)
    for S_s, S_t in itertools.product(range(1, 6), repeat=2):
        for _ in range(5):
            R = rng.random((S_s, S_t))
            cols = monotone_assignment(R)
            assert len(cols) == S_s and all(a <= b for a, b in zip(cols, cols[1:]))
            best = max(
                sum(R[i, j] for i, j in enumerate(seq))
                for seq in itertools.combinations_with_replacement(range(S_t), S_s)
            )
            assert sum(R[i, j] for i, j in enumerate(cols)) == pytest.approx(best, abs=1e-12)
            W = monotone_matching(R)
            assert torch.equal(W.sum(dim=1), torch.ones(S_s)) and torch.equal(W.argmax(dim=1), torch.tensor(cols))


def test_monotone_matching_keeps_order_where_argmax_would_not():
    R = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.7, 0.0], [0.0, 0.1, 0.5]])
    assert R.argmax(dim=1).tolist() == [1, 0, 2]  # row-wise best crosses over
    assert monotone_assignment(R) == [1, 1, 2]  # 0.9 + 0.7 + 0.5 beats 0.1 + 0.8 + 0.5


def test_learned_pairing_learns_the_cheapest_teacher_stage():
    torch.manual_seed(0)
    cost = torch.rand(3, 4)
    pairing = LearnedPairing(3, 4)
    assert torch.allclose(pairing.weights(), torch.full((3, 4), 0.25))
    opt = torch.optim.Adam(pairing.parameters(), lr=0.1)
    for _ in range(200):
        loss = (pairing.weights() * cost).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    W = pairing.weights().detach()
    assert torch.allclose(W.sum(dim=1), torch.ones(3))
    assert torch.equal(W.argmax(dim=1), cost.argmin(dim=1))
    assert (W.max(dim=1).values > 0.9).all()
    R = torch.rand(3, 4)
    assert torch.allclose(LearnedPairing(3, 4, init=R, tau=0.5).weights(), softmax_pairing(R, 0.5), atol=1e-6)


def test_make_pairing_dispatch_and_errors():
    R = torch.rand(3, 4)
    assert torch.equal(make_pairing("identity", R), identity_pairing(3, 4))
    assert torch.equal(make_pairing("identity", num_student=2, num_teacher=5), identity_pairing(2, 5))
    assert torch.allclose(make_pairing("cka_softmax", R, tau=0.3), softmax_pairing(R, 0.3))
    assert torch.equal(make_pairing("monotone", R), monotone_matching(R))
    learned = make_pairing("learned", num_student=3, num_teacher=4)
    assert isinstance(learned, LearnedPairing) and learned.weights().shape == (3, 4)
    assert set(PAIRING_RULES) == {"identity", "cka_softmax", "monotone", "learned"}
    with pytest.raises(ValueError) as err:
        make_pairing("hungarian", R)
    assert all(rule in str(err.value) for rule in PAIRING_RULES)
    with pytest.raises(ValueError, match="needs the correlation matrix"):
        make_pairing("monotone")


# ---------------------------------------------------------------- plots
def _mesh_values(ax):
    return np.asarray(ax.collections[0].get_array()).reshape(-1)


def test_plot_correlation_labels_and_values():
    R = torch.rand(2, 3)
    ax = plot_correlation(R, ["s1", "s2"], ["t1", "t2", "t3"], title="R")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t1", "t2", "t3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s1", "s2"]
    assert np.allclose(_mesh_values(ax), R.numpy().reshape(-1))
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in R.numpy().reshape(-1))
    with pytest.raises(ValueError, match="do not fit"):
        plot_correlation(R, ["s1"], ["t1", "t2", "t3"])
    plt.close("all")


def test_history_small_multiples_one_panel_per_epoch():
    history = [torch.rand(2, 3) for _ in range(5)]
    fig = plot_correlation_history(history, ["a", "b"], ["x", "y", "z"], ncols=3)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("epoch")]
    assert [ax.get_title() for ax in panels] == [f"epoch {k}" for k in range(5)]
    for ax, R in zip(panels, history):
        assert np.allclose(_mesh_values(ax), R.numpy().reshape(-1))
    plt.close("all")


def test_slider_value_changes_the_plotted_epoch():
    history = [torch.full((2, 2), 0.1 * (k + 1)) + 0.01 * torch.eye(2) for k in range(4)]
    view = correlation_slider(history, ["s1", "s2"], ["t1", "t2"], epochs=[10, 20, 30, 40])
    assert view.index == 3 and view.ax.get_title() == "epoch 40"  # starts at the last epoch
    view.slider.value = 1
    assert view.index == 1 and view.ax.get_title() == "epoch 20"
    assert np.allclose(_mesh_values(view.ax), history[1].numpy().reshape(-1))
    view.slider.value = 0
    assert np.allclose(_mesh_values(view.ax), history[0].numpy().reshape(-1))
    assert len(view.figure.axes) == 2  # redraws reuse the heatmap and colour-bar axes


def test_correlation_row_shares_one_colour_scale_and_one_colour_bar():
    import matplotlib.pyplot as plt

    from kdlab.viz.heatmaps import plot_correlation_row

    a = np.array([[0.9, 0.1], [0.2, 0.5]])
    b = np.array([[-0.1, 0.3], [0.4, 0.2]])
    fig = plot_correlation_row({"a": a, "b": (b, ["s1", "s2"], ["t1", "t2"])}, label="linear CKA")
    meshes = [ax.collections[0] for ax in fig.axes[:2]]
    assert all(m.get_clim() == (-0.1, 1.0) for m in meshes)  # vmin: the smallest entry, below 0
    assert len(fig.axes) == 3 and fig.axes[2].get_ylabel() == "linear CKA"  # two heatmaps + one colour bar
    plt.close(fig)
