"""kdlab.losses: each loss against an independent NumPy / loop formula, plus properties.

The reference implementations below are written from the method descriptions with explicit
loops, not by calling kdlab, so a wrong reduction, scaling or normalisation shows up.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import kdlab.losses as L


def np64(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def softmax_np(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def smooth_l1_np(a: float, b: float) -> float:
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def video(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


# --------------------------------------------------------------------------- logit losses


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_loss_matches_loop_formula(temperature):
    z_s, z_t = video(5, 7) * 3, video(5, 7) * 3
    expected = 0.0
    for b in range(5):
        p_t = softmax_np(np64(z_t[b]) / temperature)
        p_s = softmax_np(np64(z_s[b]) / temperature)
        expected += sum(p_t[k] * math.log(p_t[k] / p_s[k]) for k in range(7))
    expected = expected / 5 * temperature**2
    assert L.kd_loss(z_s, z_t, temperature).item() == pytest.approx(expected, rel=1e-9)


def dkd_reference(z_s, z_t, target, alpha, beta, temperature):
    """TCKD and NCKD from their definitions: binary (target / rest) and renormalised non-target."""
    total = 0.0
    for b in range(z_s.shape[0]):
        p_s = softmax_np(np64(z_s[b]) / temperature)
        p_t = softmax_np(np64(z_t[b]) / temperature)
        g = int(target[b])
        bs, bt = [p_s[g], 1 - p_s[g]], [p_t[g], 1 - p_t[g]]
        tckd = sum(bt[i] * math.log(bt[i] / bs[i]) for i in range(2))
        others = [k for k in range(len(p_s)) if k != g]
        q_s = p_s[others] / p_s[others].sum()
        q_t = p_t[others] / p_t[others].sum()
        nckd = sum(q_t[i] * math.log(q_t[i] / q_s[i]) for i in range(len(others)))
        total += alpha * tckd + beta * nckd
    return total / z_s.shape[0] * temperature**2


@pytest.mark.parametrize("num_classes", [2, 6])
def test_dkd_loss_matches_definition(num_classes):
    z_s, z_t = video(4, num_classes) * 2, video(4, num_classes) * 2
    target = torch.randint(num_classes, (4,))
    got = L.dkd_loss(z_s, z_t, target, alpha=1.5, beta=3.0, temperature=2.0)
    assert got.item() == pytest.approx(dkd_reference(z_s, z_t, target, 1.5, 3.0, 2.0), rel=1e-7)


def test_dkd_none_target_uses_teacher_argmax():
    z_s, z_t = video(4, 5), video(4, 5)
    assert torch.allclose(L.dkd_loss(z_s, z_t, None), L.dkd_loss(z_s, z_t, z_t.argmax(1)))


def test_dkd_finite_for_extreme_logits_and_two_classes():
    z_s = torch.tensor([[60.0, -60.0], [-80.0, 80.0]], requires_grad=True)  # p underflows in float32
    z_t = torch.tensor([[-5.0, 5.0], [5.0, -5.0]])
    loss = L.dkd_loss(z_s, z_t, torch.tensor([0, 1]), temperature=1.0)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert torch.isfinite(z_s.grad).all()


def test_logit_loss_errors():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6\)"):
        L.kd_loss(torch.randn(4, 5), torch.randn(4, 6))
    with pytest.raises(ValueError, match="target"):
        L.dkd_loss(torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 9, 2]))
    with pytest.raises(ValueError, match="temperature"):
        L.kd_loss(torch.randn(4, 5), torch.randn(4, 5), temperature=0.0)


# --------------------------------------------------------------------------- feature losses


@pytest.mark.parametrize("p", [1, 2])
def test_at_loss_matches_numpy(p):
    f_s, f_t = video(3, 4, 2, 3, 3), video(3, 6, 2, 3, 3)  # channels may differ

    def att(f):
        a = (np.abs(np64(f)) ** p).mean(axis=1).reshape(f.shape[0], -1)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    expected = ((att(f_s) - att(f_t)) ** 2).mean()
    assert L.at_loss(f_s, f_t, p=p).item() == pytest.approx(expected, rel=1e-9)


def test_sp_loss_matches_loops():
    f_s, f_t = video(4, 3, 2, 2, 2), video(4, 5, 1, 3, 3)  # only the batch must match
    def gram(f):
        x = np64(f).reshape(4, -1)
        g = np.array([[x[i] @ x[j] for j in range(4)] for i in range(4)])
        return g / np.linalg.norm(g, axis=1, keepdims=True)
    expected = ((gram(f_t) - gram(f_s)) ** 2).sum() / 16
    assert L.sp_loss(f_s, f_t).item() == pytest.approx(expected, rel=1e-9)


def test_nst_loss_matches_loops():
    f_s, f_t = video(2, 3, 2, 2, 2), video(2, 5, 2, 2, 2)
    expected = 0.0
    for b in range(2):
        s = [v / np.linalg.norm(v) for v in np64(f_s[b]).reshape(3, -1)]
        t = [v / np.linalg.norm(v) for v in np64(f_t[b]).reshape(5, -1)]
        k = lambda xs, ys: np.mean([(x @ y) ** 2 for x in xs for y in ys])
        expected += k(t, t) + k(s, s) - 2 * k(s, t)
    assert L.nst_loss(f_s, f_t).item() == pytest.approx(expected / 2, rel=1e-9)


def test_fitnet_loss_is_mse_after_regressor():
    adapter = L.StageAdapter((3, 4, 4, 4), (5, 2, 2, 2)).double()
    f_s, f_t = video(2, 3, 4, 4, 4), video(2, 5, 2, 2, 2)
    mapped = np64(adapter(f_s))
    assert L.fitnet_loss(f_s, f_t, adapter).item() == pytest.approx(((mapped - np64(f_t)) ** 2).mean(), rel=1e-9)
    L.fitnet_loss(f_s, f_t, adapter).backward()
    assert adapter.proj[0].weight.grad.abs().sum() > 0  # the regressor learns with the student
    with pytest.raises(ValueError, match="regressor"):
        L.fitnet_loss(f_s, f_t, None)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_fd_channel_softmax_matches_loops(temperature):
    f_s, f_t = video(2, 3, 2, 2, 3), video(2, 3, 2, 2, 3)
    total = 0.0
    for b in range(2):
        for c in range(3):
            p_s = softmax_np(np64(f_s[b, c]).ravel() / temperature)
            p_t = softmax_np(np64(f_t[b, c]).ravel() / temperature)
            total += sum(p_t[n] * math.log(p_t[n] / p_s[n]) for n in range(12))
    expected = total / 6 * temperature**2
    got = L.fd_loss(f_s, f_t, kind="channel_softmax", temperature=temperature)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_fd_gaussian_matches_numerical_kl():
    # Teacher and student channels with clearly different moments.
    f_s = video(4, 2, 2, 3, 3) * torch.tensor([1.0, 2.0]).view(1, 2, 1, 1, 1).double()
    f_t = video(4, 2, 2, 3, 3) * 0.7 + torch.tensor([0.5, -1.0]).view(1, 2, 1, 1, 1).double()
    eps = 1e-5
    kls = []
    grid = np.linspace(-30, 30, 200001)
    for c in range(2):
        xs, xt = np64(f_s[:, c]).ravel(), np64(f_t[:, c]).ravel()
        ms, vs = xs.mean(), ((xs - xs.mean()) ** 2).mean() + eps
        mt, vt = xt.mean(), ((xt - xt.mean()) ** 2).mean() + eps
        # KL(N_t || N_s) by numerical integration of the densities, not the closed form.
        log_pt = -0.5 * np.log(2 * np.pi * vt) - (grid - mt) ** 2 / (2 * vt)
        log_ps = -0.5 * np.log(2 * np.pi * vs) - (grid - ms) ** 2 / (2 * vs)
        kls.append(np.trapezoid(np.exp(log_pt) * (log_pt - log_ps), grid))
    got = L.fd_loss(f_s, f_t, kind="gaussian", eps=eps)
    assert got.item() == pytest.approx(np.mean(kls), rel=1e-6)


def mmd_rbf_reference(f_s, f_t, sigma2=None, step=1):
    """Per-sample MMD^2 between position vectors with an RBF kernel, explicit loops."""
    total = 0.0
    for b in range(f_s.shape[0]):
        s = np64(f_s[b]).reshape(f_s.shape[1], -1).T[::step]
        t = np64(f_t[b]).reshape(f_t.shape[1], -1).T[::step]
        z = np.concatenate([s, t])
        if sigma2 is None:  # lower median of the squared distances between distinct points
            d2 = sorted(((z[i] - z[j]) ** 2).sum() for i in range(len(z)) for j in range(len(z)) if i != j)
            sig = d2[(len(d2) - 1) // 2]
        else:
            sig = sigma2
        k = lambda xs, ys, sig=sig: np.mean([math.exp(-((x - y) ** 2).sum() / (2 * sig)) for x in xs for y in ys])
        total += k(t, t) + k(s, s) - 2 * k(s, t)
    return total / f_s.shape[0]


def test_fd_mmd_rbf_matches_loops_median_and_given_bandwidth():
    f_s, f_t = video(2, 3, 2, 2, 2), video(2, 3, 2, 2, 2) * 1.5 + 0.3
    got = L.fd_loss(f_s, f_t, kind="mmd", kernel="rbf")
    assert got.item() == pytest.approx(mmd_rbf_reference(f_s, f_t), rel=1e-7)
    got = L.fd_loss(f_s, f_t, kind="mmd", kernel="rbf", bandwidth=2.5)
    assert got.item() == pytest.approx(mmd_rbf_reference(f_s, f_t, sigma2=2.5), rel=1e-7)


def test_fd_mmd_subsamples_positions_on_a_stride():
    f_s, f_t = video(1, 2, 4, 3, 3), video(1, 2, 4, 3, 3)  # N = 36 positions
    got = L.fd_mmd_loss(f_s, f_t, kernel="rbf", bandwidth=1.0, max_positions=10)  # stride 4
    assert got.item() == pytest.approx(mmd_rbf_reference(f_s, f_t, sigma2=1.0, step=4), rel=1e-7)


def test_fd_mmd_poly_on_positions_and_channels():
    f_s, f_t = video(2, 3, 1, 2, 2), video(2, 3, 1, 2, 2)
    expected = 0.0
    for b in range(2):
        s, t = np64(f_s[b]).reshape(3, -1).T, np64(f_t[b]).reshape(3, -1).T
        k = lambda xs, ys: np.mean([(x @ y) ** 2 for x in xs for y in ys])
        expected += k(t, t) + k(s, s) - 2 * k(s, t)
    got = L.fd_loss(f_s, f_t, kind="mmd", kernel="poly")
    assert got.item() == pytest.approx(expected / 2, rel=1e-9)
    # NST's view: normalised channel activations with the polynomial kernel is exactly NST.
    nst_view = L.fd_mmd_loss(f_s, f_t, kernel="poly", samples="channels")
    assert nst_view.item() == pytest.approx(L.nst_loss(f_s, f_t).item(), rel=1e-12)


def test_mse_feature_loss():
    f_s, f_t = video(2, 3, 2, 2, 2), video(2, 3, 2, 2, 2)
    assert L.get_loss("mse")(f_s, f_t).item() == pytest.approx(((np64(f_s) - np64(f_t)) ** 2).mean())


# --------------------------------------------------------------------------- embedding losses


def test_rkd_loss_matches_loops():
    e_s, e_t = video(5, 4), video(5, 6)  # embedding sizes may differ
    def dist(e):
        x = np64(e)
        d = np.array([[np.linalg.norm(x[i] - x[j]) for j in range(5)] for i in range(5)])
        return d / (d.sum() / 20)  # mean over the 20 ordered pairs i != j
    def cosines(e):
        x = np64(e)
        out = np.zeros((5, 5, 5))
        for i in range(5):
            for j in range(5):
                for k in range(5):
                    if i != j and k != j:
                        a, c = x[i] - x[j], x[k] - x[j]
                        out[i, j, k] = a @ c / (np.linalg.norm(a) * np.linalg.norm(c))
        return out
    ds, dt = dist(e_s), dist(e_t)
    cs, ct = cosines(e_s), cosines(e_t)
    distance = np.mean([smooth_l1_np(a, b) for a, b in zip(ds.ravel(), dt.ravel())])
    angle = np.mean([smooth_l1_np(a, b) for a, b in zip(cs.ravel(), ct.ravel())])
    got = L.rkd_loss(e_s, e_t, distance_weight=2.0, angle_weight=3.0)
    assert got.item() == pytest.approx(2.0 * distance + 3.0 * angle, rel=1e-7)


def test_pkt_loss_matches_loops():
    e_s, e_t, eps = video(4, 3), video(4, 5), 1e-7
    def cond(e):
        x = np64(e)
        x = x / (np.linalg.norm(x, axis=1, keepdims=True) + eps)
        s = np.array([[(x[i] @ x[j] + 1) / 2 for j in range(4)] for i in range(4)])
        return s / s.sum(axis=1, keepdims=True)
    ps, pt = cond(e_s), cond(e_t)
    expected = np.mean(pt * np.log((pt + eps) / (ps + eps)))
    assert L.pkt_loss(e_s, e_t, eps).item() == pytest.approx(expected, rel=1e-9)


def test_relational_losses_ignore_student_scale():
    # Distances are normalised by their mean and angles / cosines are scale-free.
    e_s, e_t = video(6, 4), video(6, 8)
    for loss in (L.rkd_loss, L.pkt_loss, L.sp_loss):
        assert loss(e_s * 7.0, e_t).item() == pytest.approx(loss(e_s, e_t).item(), rel=1e-6)
    f_s, f_t = video(2, 3, 2, 2, 2), video(2, 4, 2, 2, 2)
    for loss in (L.at_loss, L.nst_loss):
        assert loss(f_s * 7.0, f_t).item() == pytest.approx(loss(f_s, f_t).item(), rel=1e-6)


# --------------------------------------------------------------------------- properties


FEATURE_NAMES = sorted(L.FEATURE_LOSSES)
EMBEDDING_NAMES = sorted(L.EMBEDDING_LOSSES)


def _call(name, s, t):
    if name in L.LOGIT_LOSSES:
        return L.get_loss(name)(s, t, torch.arange(s.shape[0]) % s.shape[1])
    return L.get_loss(name)(s, t)


def _pair(name, batch=3, constant=False):
    if name in L.LOGIT_LOSSES:
        shape = (batch, 5)
    elif name in L.EMBEDDING_LOSSES:
        shape = (batch, 6)
    else:
        shape = (batch, 4, 2, 3, 3)
    if constant:
        return torch.full(shape, 0.5), torch.full(shape, 0.5)
    return torch.randn(shape), torch.randn(shape)


ALL_NAMES = FEATURE_NAMES + EMBEDDING_NAMES + sorted(L.LOGIT_LOSSES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_zero_when_student_equals_teacher(name):
    s, _ = _pair(name)
    loss = _call(name, s, s.clone())
    assert abs(loss.item()) < 1e-5


@pytest.mark.parametrize("name", ALL_NAMES)
def test_positive_when_they_differ(name):
    s, t = _pair(name)
    assert _call(name, s, t).item() > 1e-6


@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradients_reach_the_student_only(name):
    s, t = _pair(name)
    s.requires_grad_(True)
    t.requires_grad_(True)  # a teacher that forgot no_grad: the loss must still not train it
    _call(name, s, t).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("case", ["constant", "batch_of_one"])
def test_finite_on_edge_cases(name, case):
    if case == "constant":
        s, t = _pair(name, constant=True)
        t = t * 2.0  # constant student, different constant teacher
    else:
        s, t = _pair(name, batch=1)
    s.requires_grad_(True)
    loss = _call(name, s, t)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()


def test_get_loss_unknown_name_lists_valid_ones():
    assert L.get_loss("at") is L.at_loss
    with pytest.raises(ValueError, match=r"'atx'.*fd_gaussian.*rkd.*dkd"):
        L.get_loss("atx")
    with pytest.raises(ValueError, match="channel_softmax, gaussian, mmd"):
        L.fd_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), kind="kl")


@pytest.mark.parametrize(
    "loss, s_shape, t_shape",
    [
        (L.at_loss, (2, 4, 2, 4, 4), (2, 4, 2, 2, 2)),
        (L.nst_loss, (2, 4, 4, 4, 4), (2, 4, 2, 4, 4)),
        (L.sp_loss, (2, 4, 2, 4, 4), (3, 4, 2, 4, 4)),
        (L.feature_mse_loss, (2, 4, 2, 4, 4), (2, 8, 2, 4, 4)),
        (L.fd_loss, (2, 4, 2, 4, 4), (2, 4, 1, 4, 4)),
        (L.fd_gaussian_loss, (2, 4, 2, 4, 4), (2, 8, 2, 4, 4)),
        (L.fd_mmd_loss, (2, 4, 2, 4, 4), (2, 4, 2, 2, 2)),
        (L.rkd_loss, (2, 4), (3, 4)),
        (L.pkt_loss, (2, 4), (3, 4)),
    ],
)
def test_shape_mismatch_names_both_shapes(loss, s_shape, t_shape):
    with pytest.raises(ValueError) as err:
        loss(torch.randn(s_shape), torch.randn(t_shape))
    assert str(s_shape) in str(err.value) and str(t_shape) in str(err.value)


def test_channel_free_losses_accept_different_channels():
    f_s, f_t = torch.randn(2, 4, 2, 3, 3), torch.randn(2, 16, 2, 3, 3)
    for name in L.CHANNEL_FREE_LOSSES:
        assert torch.isfinite(L.get_loss(name)(f_s, f_t))


def test_2d_features_work():
    f_s, f_t = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    for name in FEATURE_NAMES:
        assert torch.isfinite(L.get_loss(name)(f_s, f_t))


# --------------------------------------------------------------------------- adapter


@pytest.mark.parametrize(
    "s_shape, t_shape",
    [
        ((16, 8, 16, 16), (64, 4, 8, 8)),  # deeper teacher stage: fewer positions, more channels
        ((64, 2, 4, 4), (32, 8, 16, 16)),  # upsampling on every axis
        ((8, 8, 8, 8), (8, 4, 16, 6)),  # mixed: T down, H up, W down (not a divisor)
        ((8, 4, 8, 8), (8, 4, 8, 8)),  # same shape
        ((8, 16, 16), (24, 8, 32)),  # 2D features
    ],
)
def test_adapter_maps_student_to_teacher_shape(s_shape, t_shape):
    adapter = L.StageAdapter(s_shape, t_shape)
    out = adapter(torch.randn(2, *s_shape))
    assert out.shape == (2, *t_shape)
    f_t = torch.randn(2, *t_shape)
    for name in FEATURE_NAMES:
        loss = L.get_loss(name)(out, f_t)
        assert torch.isfinite(loss), name
    L.feature_mse_loss(out, f_t).backward()
    assert adapter.proj[0].weight.grad is not None


def test_adapter_without_projection_pools_exact_block_means_and_keeps_constants():
    x = video(2, 3, 4, 4, 6)
    # Blocks of 2 x 2 x 3: a factor of 3 tells averaging apart from interpolating at block centres.
    down = L.StageAdapter((3, 4, 4, 6), (3, 2, 2, 2), project=False)
    blocks = np64(x).reshape(2, 3, 2, 2, 2, 2, 2, 3).mean(axis=(3, 5, 7))
    assert np.allclose(np64(down(x)), blocks)
    up = L.StageAdapter((3, 2, 2, 3), (3, 4, 8, 5), project=False)
    constant = torch.full((1, 3, 2, 2, 3), 1.25, dtype=torch.float64)
    assert torch.allclose(up(constant), torch.full((1, 3, 4, 8, 5), 1.25, dtype=torch.float64))


def test_adapter_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(8, 4, 4, 4\).*\(8, 4, 4\)"):
        L.StageAdapter((8, 4, 4, 4), (8, 4, 4))
    with pytest.raises(ValueError, match="project=False"):
        L.StageAdapter((8, 4, 4, 4), (16, 4, 4, 4), project=False)
    adapter = L.StageAdapter((8, 4, 4, 4), (16, 2, 2, 2))
    with pytest.raises(ValueError, match=r"\(2, 8, 4, 4, 5\)"):
        adapter(torch.randn(2, 8, 4, 4, 5))


# --------------------------------------------------------------------------- learning


@pytest.mark.parametrize("kind", ["channel_softmax", "gaussian", "mmd"])
def test_minimising_fd_loss_matches_the_distributions(kind):
    """Gradient descent on free student features drives each variant's own statistic to the teacher's."""
    teacher = torch.randn(4, 3, 2, 4, 4) * torch.tensor([0.5, 2.0, 1.0]).view(1, 3, 1, 1, 1) + 1.0
    student = torch.randn(4, 3, 2, 4, 4, requires_grad=True)
    start = L.fd_loss(student, teacher, kind=kind).item()
    opt = torch.optim.Adam([student], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        L.fd_loss(student, teacher, kind=kind).backward()
        opt.step()
    assert L.fd_loss(student, teacher, kind=kind).item() < 0.05 * start
    with torch.no_grad():
        if kind == "gaussian":
            mu_s, var_s = L.channel_moments(student)
            mu_t, var_t = L.channel_moments(teacher)
            assert torch.allclose(mu_s, mu_t, atol=0.05) and torch.allclose(var_s, var_t, rtol=0.1)
        if kind == "channel_softmax":
            p = lambda f: f.reshape(4, 3, -1).softmax(-1)
            assert (p(student) - p(teacher)).abs().max() < 0.05


def test_adapter_learns_a_fitnet_hint():
    """A StageAdapter trained with the hint loss recovers a teacher made by a 1x1x1 map of pooled features."""
    f_s = torch.randn(8, 4, 4, 8, 8)
    mix = torch.randn(6, 4)
    pooled = torch.nn.functional.avg_pool3d(f_s, 2)
    f_t = torch.einsum("oc,bcthw->bothw", mix, pooled)
    adapter = L.StageAdapter((4, 4, 8, 8), (6, 2, 4, 4))
    opt = torch.optim.Adam(adapter.parameters(), lr=0.05)
    start = L.fitnet_loss(f_s, f_t, adapter).item()
    for _ in range(150):
        opt.zero_grad()
        L.fitnet_loss(f_s, f_t, adapter).backward()
        opt.step()
    assert L.fitnet_loss(f_s, f_t, adapter).item() < 0.02 * start
