"""Recursive domain-transform (DT) filter, vectorised in torch, with Karaali's depth-edge penalty.

Gastal & Oliveira, "Domain transform for edge-aware image and video processing"
(SIGGRAPH 2011), recursive-filter (RF) variant; the penalty term is Karaali,
Harte & Jung, Eq. (2)-(3).

1-D domain transform between neighbouring samples ``x`` and ``x+1`` of a row
(or column) of the guide ``J`` (``C`` channels)::

    d[x] = 1 + psi * (E[x] + E[x+1]) / 2 + (sigma_s / sigma_r) * sum_k |J_k[x+1] - J_k[x]|

``E`` is the binary depth-edge map (``Psi(x) = psi`` on depth edges, Eq. 3); the
penalty is the integral of the piecewise-constant ``Psi`` over ``[x, x+1]``, so
crossing a one-pixel depth edge costs ``psi`` (Eq. 2: ``1 + psi`` is a lower bound
of the distance across a depth edge): ``penalty_placement="mean"`` (default). The
authors' released code adds ``psi E`` per pixel to the distance array it indexes by the
link's right (lower) end, so the link ``x -- x+1`` pays ``psi * E[x+1]``:
``penalty_placement="next"`` (a one-pixel depth edge then costs ``psi`` on one of its
two links and nothing on the other).

Iteration ``i = 1..N`` uses ``sigma_H_i = sigma_s * sqrt(3) * 2^(N-i) / sqrt(4^N - 1)``
(the variances of the ``N`` passes add up to ``sigma_s^2``) and the feedback
coefficient ``a = exp(-sqrt(2) / sigma_H_i)``; with ``v[x] = a^d[x]`` a
horizontal pass is the causal then anti-causal first-order recursion::

    y[x] = (1 - v[x-1]) f[x] + v[x-1] y[x-1]       (left -> right, y[0] = f[0])
    z[x] = (1 - v[x]) y[x] + v[x] z[x+1]           (right -> left, z[W-1] = y[W-1])

followed by the same vertical pass. Instead of a Python loop over the pixels of
a line, each recursion is evaluated as an inclusive *associative scan* of the
affine maps ``y -> v y + (1 - v) f`` (Hillis-Steele, ``ceil(log2 W)`` steps of
whole-tensor ops, no division, so no underflow trouble when ``v`` is tiny). All
rows / columns, channels and batch items run at once, on any device.

Why by hand: no installed library has the recursive DT filter in torch
(OpenCV's ``ximgproc.dtFilter`` is in opencv-contrib, CPU-only and has no
penalty term).
"""

from __future__ import annotations

import math

import torch

__all__ = ["domain_transform_derivatives", "recursive_filter", "dt_filter", "normalized_dt_propagation",
           "iteration_sigmas", "PENALTY_PLACEMENTS"]

#: where the depth-edge penalty of the link x -- x+1 is read: mean of E[x], E[x+1] (integral) | E[x+1] (authors)
PENALTY_PLACEMENTS = ("mean", "next")


def iteration_sigmas(sigma_s: float, iterations: int) -> list[float]:
    """``sigma_H_i`` of the ``N`` iterations (Gastal & Oliveira 2011, Eq. 14)."""
    n = int(iterations)
    if n < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    return [sigma_s * math.sqrt(3.0) * 2.0 ** (n - i) / math.sqrt(4.0**n - 1.0) for i in range(1, n + 1)]


def _check_4d(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {getattr(t, 'shape', type(t))}")


def domain_transform_derivatives(
    guide: torch.Tensor,
    sigma_s: float,
    sigma_r: float,
    psi: float = 0.0,
    depth_edges: torch.Tensor | None = None,
    penalty_placement: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances ``d`` between horizontal and vertical neighbours: ``(B,1,H,W-1)``, ``(B,1,H-1,W)``.

    ``guide``: ``(B, C, H, W)``; ``depth_edges``: ``(B, 1, H, W)`` (or ``(B, H, W)``), nonzero = depth edge;
    ``penalty_placement``: ``"mean"`` (``psi (E[x] + E[x+1]) / 2``) or ``"next"`` (``psi E[x+1]``,
    the authors' code), see the module docstring.
    """
    if penalty_placement not in PENALTY_PLACEMENTS:
        raise ValueError(f"penalty_placement must be one of {PENALTY_PLACEMENTS}, got {penalty_placement!r}")
    _check_4d("guide", guide)
    if sigma_r <= 0 or sigma_s <= 0:
        raise ValueError(f"sigma_s and sigma_r must be > 0, got sigma_s={sigma_s}, sigma_r={sigma_r}")
    ratio = float(sigma_s) / float(sigma_r)
    dx = 1.0 + ratio * (guide[..., 1:] - guide[..., :-1]).abs().sum(1, keepdim=True)
    dy = 1.0 + ratio * (guide[..., 1:, :] - guide[..., :-1, :]).abs().sum(1, keepdim=True)
    if depth_edges is not None and psi != 0:
        e = depth_edges
        if e.dim() == 3:
            e = e[:, None]
        _check_4d("depth_edges", e)
        b, _, h, w = guide.shape
        if e.shape[0] != b or e.shape[-2:] != (h, w) or e.shape[1] != 1:
            raise ValueError(f"depth_edges must be (B, 1, H, W) = ({b}, 1, {h}, {w}), got {tuple(e.shape)}")
        e = (e != 0).to(dx.dtype)
        if penalty_placement == "mean":
            dx = dx + float(psi) * 0.5 * (e[..., 1:] + e[..., :-1])
            dy = dy + float(psi) * 0.5 * (e[..., 1:, :] + e[..., :-1, :])
        else:
            dx = dx + float(psi) * e[..., 1:]
            dy = dy + float(psi) * e[..., 1:, :]
    return dx, dy


#: products of feedback coefficients below this are set to 0 (their effect is < 1e-30 anyway)
_TINY = 1e-30


def _tiny_below(dtype: torch.dtype) -> float:
    """The largest ``dtype`` value below ``_TINY``: ``threshold(x, it, 0)`` zeroes exactly ``x < _TINY``."""
    t = torch.tensor(_TINY, dtype=dtype)
    return torch.nextafter(t, torch.zeros((), dtype=dtype)).item()


def _scan(a: torch.Tensor, b: torch.Tensor, dim: int, reverse: bool) -> torch.Tensor:
    """Inclusive scan of ``y[x] = a[x] y[x -/+ 1] + b[x]`` along ``dim`` (``a`` is 0 at the start).

    Hillis-Steele: after the step with shift ``s`` each ``(a, b)`` is the composition of
    the ``2s`` maps ending at ``x``: ``(a, b) o (a', b') = (a a', a b' + b)``. Slices
    along ``dim`` (``narrow``), no transposes or concatenations; each step writes into the
    other of two buffers (ping-pong: one fused pass per array and step, no allocation).
    """
    n = b.shape[dim]
    if n <= 1:
        return b
    tiny = _tiny_below(a.dtype)
    bufs_b: list[torch.Tensor | None] = [None, None]  # the inputs are read only; two own buffers each
    bufs_a: list[torch.Tensor | None] = [None, None]
    s, k = 1, 0
    while s < n:
        dst, src = (0, s) if reverse else (s, 0)
        rest = n - s if reverse else 0  # the s entries that stay as they are
        nb = bufs_b[k % 2] if bufs_b[k % 2] is not None else torch.empty_like(b)
        bufs_b[k % 2] = nb
        nb.narrow(dim, rest, s).copy_(b.narrow(dim, rest, s))
        torch.addcmul(b.narrow(dim, dst, n - s), a.narrow(dim, dst, n - s), b.narrow(dim, src, n - s),
                      out=nb.narrow(dim, dst, n - s))
        if 2 * s < n:
            na = bufs_a[k % 2] if bufs_a[k % 2] is not None else torch.empty_like(a)
            bufs_a[k % 2] = na
            na.narrow(dim, rest, s).copy_(a.narrow(dim, rest, s))
            torch.mul(a.narrow(dim, dst, n - s), a.narrow(dim, src, n - s), out=na.narrow(dim, dst, n - s))
            a = torch.nn.functional.threshold_(na, tiny, 0.0)  # no denormals (x86 is ~100x slower on them)
        b = nb
        s, k = 2 * s, k + 1
    return b


def _pass(f: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """Causal + anti-causal recursion along ``dim``; ``v`` has size ``n - 1`` there (between samples)."""
    zero = torch.zeros_like(v.narrow(dim, 0, 1))
    v = v.masked_fill(v < _TINY, 0.0)
    a = torch.cat([zero, v], dim)  # y[x] = v[x-1] y[x-1] + (1 - v[x-1]) f[x]
    causal = _scan(a, (1.0 - a) * f, dim, reverse=False)
    a = torch.cat([v, zero], dim)  # z[x] = v[x] z[x+1] + (1 - v[x]) y[x]
    return _scan(a, (1.0 - a) * causal, dim, reverse=True)


def recursive_filter(
    image: torch.Tensor,
    dx: torch.Tensor,
    dy: torch.Tensor,
    sigma_s: float,
    iterations: int = 3,
) -> torch.Tensor:
    """RF domain-transform filtering of ``image`` (``B,C,H,W``) given neighbour distances ``dx``, ``dy``."""
    _check_4d("image", image)
    b, _, h, w = image.shape
    if dx.shape[0] != b or dx.shape[-2:] != (h, w - 1) or dy.shape[-2:] != (h - 1, w):
        raise ValueError(f"dx/dy shapes {tuple(dx.shape)}/{tuple(dy.shape)} do not fit the image {tuple(image.shape)}")
    out = image.contiguous()
    for sigma_h in iteration_sigmas(sigma_s, iterations):
        log_a = -math.sqrt(2.0) / sigma_h  # v = a^d = exp(d log a)
        if w > 1:
            out = _pass(out, torch.exp(dx * log_a), -1)
        if h > 1:
            out = _pass(out, torch.exp(dy * log_a), -2)
    return out


def dt_filter(
    image: torch.Tensor,
    guide: torch.Tensor | None = None,
    sigma_s: float = 60.0,
    sigma_r: float = 0.4,
    iterations: int = 3,
    psi: float = 0.0,
    depth_edges: torch.Tensor | None = None,
    penalty_placement: str = "mean",
) -> torch.Tensor:
    """Edge-aware recursive DT filter ``F(image, guide)`` (``guide`` defaults to ``image``).

    ``image``/``guide``: ``(B, C, H, W)`` float tensors (same B, H, W); ``psi`` and
    ``depth_edges`` add Karaali's depth-edge penalty (Eq. 2-3), placed as ``penalty_placement`` says.
    """
    _check_4d("image", image)
    guide = image if guide is None else guide
    _check_4d("guide", guide)
    if guide.shape[0] != image.shape[0] or guide.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"guide {tuple(guide.shape)} and image {tuple(image.shape)} differ in batch or size")
    dx, dy = domain_transform_derivatives(guide.to(image.dtype), sigma_s, sigma_r, psi, depth_edges,
                                          penalty_placement)
    return recursive_filter(image, dx, dy, sigma_s, iterations)


def normalized_dt_propagation(
    sparse: torch.Tensor,
    valid: torch.Tensor,
    guide: torch.Tensor,
    sigma_s: float,
    sigma_r: float,
    iterations: int = 5,
    psi: float = 0.0,
    depth_edges: torch.Tensor | None = None,
    eps: float = 1e-12,
    penalty_placement: str = "mean",
) -> torch.Tensor:
    """Karaali Eq. (1): ``F(sparse * valid) / F(valid)`` with the penalised DT filter.

    ``sparse``/``valid``: ``(B, 1, H, W)``. Pixels the normaliser cannot reach
    (``F(valid) <= eps``, e.g. no valid sample at all) get the mean of the valid samples
    of their image (0 when there is none).
    """
    _check_4d("sparse", sparse)
    valid = valid.to(sparse.dtype)
    num_den = dt_filter(torch.cat([sparse * valid, valid], 1), guide, sigma_s, sigma_r, iterations, psi, depth_edges,
                        penalty_placement)
    num, den = num_den[:, :1], num_den[:, 1:]
    count = valid.sum((1, 2, 3), keepdim=True)
    mean = (sparse * valid).sum((1, 2, 3), keepdim=True) / count.clamp_min(1.0)
    return torch.where(den > eps, num / den.clamp_min(eps), mean.expand_as(num))
