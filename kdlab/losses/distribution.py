"""Feature-distribution loss: kdlab's reading of the staged-KD paper's "feature distribution" term.

Match *distributions* of features rather than points. Three variants (see :func:`fd_loss`); each
needs student and teacher features of the same shape (a :class:`kdlab.losses.StageAdapter`
provides it) and detaches the teacher, so gradients reach the student only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._shapes import flatten_positions, require_same_shape
from .kernels import median_bandwidth, mmd2, poly_kernel, rbf_kernel

FD_KINDS = ("channel_softmax", "gaussian", "mmd")
MMD_KERNELS = ("rbf", "poly")
MMD_SAMPLES = ("positions", "channels")
# Chosen by benchmarks/bench_fd.py on validation (default dataset, 10 % labels, 3 seeds): see the README.
DEFAULT_FD_KIND = "channel_softmax"

_HINT = "map the student with kdlab.losses.StageAdapter first"


def _check(loss: str, f_s: torch.Tensor, f_t: torch.Tensor, min_dim: int) -> None:
    require_same_shape(loss, f_s, f_t, _HINT)
    if f_s.dim() < min_dim:
        raise ValueError(
            f"{loss}: expected features with at least {min_dim} dims "
            f"((B, C, T, H, W) or (B, C, H, W)), got {tuple(f_s.shape)}"
        )


def fd_channel_softmax_loss(f_s: torch.Tensor, f_t: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Spatio-temporal channel distribution.

    For each sample b and channel c, p^c = softmax over the N = T*H*W positions of f[b, c] / tau;
    loss = tau^2 / (B*C) * sum_{b,c} sum_n p_t^c[n] * (log p_t^c[n] - log p_s^c[n]),
    i.e. KL(teacher || student) summed over positions, averaged over B*C, times tau^2.

    Args:
        f_s, f_t: (B, C, T, H, W) or (B, C, H, W), same shape.
        temperature: tau > 0; larger spreads each channel's distribution over more positions.
    """
    _check("fd_channel_softmax_loss", f_s, f_t, 3)
    if temperature <= 0:
        raise ValueError(f"fd_channel_softmax_loss: temperature must be > 0, got {temperature}")
    s = flatten_positions(f_s) / temperature
    t = flatten_positions(f_t.detach()) / temperature
    batch, channels = s.shape[:2]
    kl = F.kl_div(F.log_softmax(s, dim=2), F.log_softmax(t, dim=2), reduction="sum", log_target=True)
    return kl * temperature**2 / (batch * channels)


def channel_moments(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance over the batch and all positions: (C,), (C,)."""
    per_channel = f.transpose(0, 1).reshape(f.shape[1], -1)
    return per_channel.mean(dim=1), per_channel.var(dim=1, unbiased=False)


def fd_gaussian_loss(f_s: torch.Tensor, f_t: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-channel Gaussian moments.

    For channel c, mu^c and (sigma^c)^2 are the mean and biased variance of f[:, c] over the
    batch and all positions, with eps added to each variance. Then
    KL(N_t || N_s) = log(sigma_s / sigma_t) + (sigma_t^2 + (mu_t - mu_s)^2) / (2 sigma_s^2) - 1/2,
    averaged over the C channels.

    Args:
        f_s, f_t: (B, C, ...) of the same shape; (B, C) embeddings work too.
        eps: variance floor, keeps constant channels finite.
    """
    _check("fd_gaussian_loss", f_s, f_t, 2)
    mu_s, var_s = channel_moments(f_s)
    mu_t, var_t = channel_moments(f_t.detach())
    var_s, var_t = var_s + eps, var_t + eps
    kl = 0.5 * (torch.log(var_s / var_t) + (var_t + (mu_t - mu_s).pow(2)) / var_s - 1.0)
    return kl.mean()


def _subsample_positions(x: torch.Tensor, max_positions: int | None) -> torch.Tensor:
    """(B, N, C) -> (B, M, C) on a regular stride, M <= max_positions.

    Deterministic on purpose: a random subset would draw from the global RNG, and then the data
    stream would differ between loss variants under the same seed, spoiling ablations.
    """
    n = x.shape[1]
    if max_positions is None or n <= max_positions:
        return x
    step = math.ceil(n / max_positions)
    return x[:, ::step]


def fd_mmd_loss(
    f_s: torch.Tensor,
    f_t: torch.Tensor,
    kernel: str = "rbf",
    bandwidth: float | None = None,
    samples: str = "positions",
    max_positions: int | None = 256,
) -> torch.Tensor:
    """Maximum mean discrepancy between the student's and the teacher's feature sets.

    Per sample b, two sets of vectors are compared:
      samples="positions": the N = T*H*W feature vectors f[b, :, n] in R^C (the distribution of
          what the network sees at each place and time); when N > max_positions a regular strided
          subset of positions (the same for student and teacher) is used;
      samples="channels": the C channel activations f[b, c, :] in R^N, each L2-normalised (NST's
          view; with kernel="poly" this equals :func:`kdlab.losses.nst_loss`).
    MMD^2_b = mean k(t, t') + mean k(s, s') - 2 mean k(s, t) over all pairs (V-statistic), and the
    loss is its mean over the batch. Kernels:
      "rbf": k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), sigma^2 = bandwidth if given, else the
          median squared distance between distinct points of the joint set (per sample, detached);
      "poly": k(x, y) = (x . y)^2.

    Args:
        f_s, f_t: (B, C, T, H, W) or (B, C, H, W), same shape.
        max_positions: cap on the positions per sample (cost grows with its square; 256 keeps a
            stage of (16, 32, 8, 16, 16) near 0.06 s forward + backward on 2 CPU threads).
    """
    _check("fd_mmd_loss", f_s, f_t, 3)
    if bandwidth is not None and bandwidth <= 0:
        raise ValueError(f"fd_mmd_loss: bandwidth (sigma^2) must be > 0, got {bandwidth}")
    if kernel not in MMD_KERNELS:
        raise ValueError(f"fd_mmd_loss: unknown kernel {kernel!r}; valid kernels: {', '.join(MMD_KERNELS)}")
    if samples not in MMD_SAMPLES:
        raise ValueError(f"fd_mmd_loss: unknown samples {samples!r}; valid: {', '.join(MMD_SAMPLES)}")
    s, t = flatten_positions(f_s), flatten_positions(f_t.detach())  # (B, C, N)
    if samples == "positions":
        s = _subsample_positions(s.transpose(1, 2), max_positions)
        t = _subsample_positions(t.transpose(1, 2), max_positions)
    else:
        s, t = F.normalize(s, dim=2), F.normalize(t, dim=2)
    if kernel == "poly":
        return mmd2(poly_kernel(s, s), poly_kernel(t, t), poly_kernel(s, t))
    sigma2 = median_bandwidth(s, t) if bandwidth is None else torch.as_tensor(float(bandwidth))
    return mmd2(rbf_kernel(s, s, sigma2), rbf_kernel(t, t, sigma2), rbf_kernel(s, t, sigma2))


def fd_loss(
    f_s: torch.Tensor,
    f_t: torch.Tensor,
    kind: str = DEFAULT_FD_KIND,
    temperature: float = 1.0,
    kernel: str = "rbf",
    **options,
) -> torch.Tensor:
    """Feature-distribution loss D(f_s, f_t), one of three variants (formulas in each function):

    kind="channel_softmax": :func:`fd_channel_softmax_loss` (uses ``temperature``), KL between
        per-channel softmax distributions over positions, tau^2-scaled;
    kind="gaussian": :func:`fd_gaussian_loss`, KL between per-channel Gaussians fitted over
        batch and positions (``eps`` in options);
    kind="mmd": :func:`fd_mmd_loss` (uses ``kernel``, and ``bandwidth``, ``samples``,
        ``max_positions`` from options).

    Args:
        f_s, f_t: (B, C, T, H, W) or (B, C, H, W), same shape; the teacher is detached.
    """
    if kind == "channel_softmax":
        return fd_channel_softmax_loss(f_s, f_t, temperature=temperature, **options)
    if kind == "gaussian":
        return fd_gaussian_loss(f_s, f_t, **options)
    if kind == "mmd":
        return fd_mmd_loss(f_s, f_t, kernel=kernel, **options)
    raise ValueError(f"fd_loss: unknown kind {kind!r}; valid kinds: {', '.join(FD_KINDS)}")
