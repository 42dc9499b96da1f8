"""The fast inference engine of Karaali's networks (:mod:`.torch_model`): dense, exact evaluation.

Dense evaluation (ours, exact): the streams are translation-equivariant, so
instead of running them on one patch per edge pixel they run once on the whole
(reflect-padded) image, with the pooling at stride 1 and the layers after it
dilated by 3 ("shift-and-stitch"); the 7x7 grid of each edge pixel is then
gathered from the dense maps and only the small trunk + FC run per edge pixel.
The result equals the patch-wise forward up to float rounding (tested).

Receptive-field-aware evaluation (``need`` masks, :mod:`dbd_lightning.ops.sparse_conv`): a
dense map is read only at the grids of the edge pixels, so each 64-channel layer is
computed only where some edge pixel's patch reads it -- gathered where few positions are
needed (sparse edge maps), dense elsewhere. Exact as well.

Native-stride wide streams (``phase`` given; an approximation, off by default): the 41 and 27
streams pool with stride 3 as in training, so their layers after the pooling run on a grid
of every third position (phase ``phase``) instead of at every pixel -- 1/9 of the
positions, and the first trunk conv on those maps as well. Each edge pixel then reads the
wide maps at the nearest grid point (at most 1 px away per axis inside the image; up to 2 px
at an image border for some sizes), the 15 stream and the rest of the trunk at the pixel itself.
The result is the patch-wise forward with the 41x41 patch of those two streams taken at that
grid point (:meth:`~.torch_model.KaraaliStreams.forward` with ``fine``; tested).

The trunk's second 3x3 conv runs per pixel by Winograd's minimal filtering F(3x3, 3x3), whose
matrices come from a Toom-Cook construction (:func:`winograd_f33`).

Every function takes the networks of :mod:`.torch_model` as they are (same weights, same
state_dict keys); nothing here changes a network, it only evaluates one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...ops.sparse_conv import SPARSE_MAX, channel_rows, conv2d_at, conv2d_relu, dilate_need
from .torch_model import KaraaliStreams, Stream, Trunk

__all__ = ["WIDE_PHASE", "gather_grids", "grid_needs", "head_from_dense", "pixel_mask", "snap_to_wide_grid",
           "stream_dense", "streams_dense", "trunk_from_dense", "wide_grid_shape", "winograd_f33"]

#: phase of the stride-3 grid of the native-stride wide streams: grid points are the pixels ``1 + 3u``
#: (the middle of each 3-pixel cell, so a pixel is at most 1 px from its grid point)
WIDE_PHASE = 1


def _dense_layers(stream: Stream, native: bool = False) -> list[tuple[nn.Conv2d | None, int]]:
    """``(conv, dilation)`` of the dense evaluation in order; ``conv`` None = the 3x3 max-pool.
    ``native``: the pooling keeps its stride 3 and the later layers are not dilated."""
    d, out = 1, []
    for i, conv in enumerate(stream.convs):
        out.append((conv, d))
        if i == stream.pool_after:
            out.append((None, d))
            if not native:
                d *= 3
    return out


def stream_dense(stream: Stream, x: torch.Tensor, need: torch.Tensor | None = None, sparse_max: float = SPARSE_MAX,
                 phase: int | None = None) -> torch.Tensor:
    """Patch outputs of ``stream`` at every position: pooling at stride 1, later layers dilated by 3.

    ``need``: bool mask of the output positions that are read (batch of one), or None (all).
    With a mask, every 64-channel layer is computed only where a needed output depends on it
    (:func:`~dbd_lightning.ops.sparse_conv.conv2d_at`); other positions are then arbitrary.
    ``phase`` (streams with a pooling only): pool at stride 3 from offset ``phase`` instead
    (native stride): output ``u`` is the patch output at position ``phase + 3u``, ``need`` in
    those coordinates.
    """
    native = phase is not None
    if native and stream.pool_after is None:
        raise ValueError("phase (native stride) needs a stream with a pooling layer")
    layers = _dense_layers(stream, native)
    sizes = [tuple(x.shape[-2:])]  # input size of every layer, then the output size
    for conv, d in layers:
        if conv is None and native:
            sizes.append(tuple((s - 3 - phase) // 3 + 1 for s in sizes[-1]))
        else:
            r = d * ((3 if conv is None else conv.kernel_size[0]) - 1)
            sizes.append(tuple(s - r for s in sizes[-1]))
    needs: list[torch.Tensor | None] = [None] * len(layers)
    if need is not None:
        if tuple(need.shape) != sizes[-1]:
            raise ValueError(f"need has shape {tuple(need.shape)}, the stream output is {sizes[-1]}")
        needs[-1] = need
        for j in range(len(layers) - 1, 0, -1):
            conv, d = layers[j]
            if conv is None and native:
                needs[j - 1] = strided_pool_need(needs[j], phase, sizes[j])
            else:
                needs[j - 1] = dilate_need(needs[j], 3 if conv is None else conv.kernel_size[0], d)
    for (conv, d), nd in zip(layers, needs, strict=True):
        if conv is None:
            x = dense_max_pool3(x, d) if not native else strided_max_pool3(x, phase)
        elif nd is None or conv is stream.convs[0]:  # the 3-channel first conv is cheap dense
            x = conv2d_relu(x, conv.weight, d)
        else:
            x = conv2d_at(x, conv.weight, d, nd, sparse_max=sparse_max)
    return x


def dense_max_pool3(x: torch.Tensor, d: int = 1) -> torch.Tensor:
    """3x3 max-pool, stride 1, dilation ``d``, VALID, as two separable maxima of shifted slices."""
    h, w = x.shape[-2] - 2 * d, x.shape[-1] - 2 * d
    r = torch.maximum(x[..., :h, :], x[..., d:d + h, :])
    r = torch.maximum(r, x[..., 2 * d:, :], out=r)  # in place: one temporary less
    c = torch.maximum(r[..., :w], r[..., d:d + w])
    return torch.maximum(c, r[..., 2 * d:], out=c)


def strided_max_pool3(x: torch.Tensor, phase: int) -> torch.Tensor:
    """3x3 max-pool with stride 3 started at offset ``phase`` (``F.max_pool2d(x[..., phase:, phase:], 3, 3)``),
    as separable maxima of strided slices: no copy of the offset view (3x faster for ``phase`` > 0)."""
    h, w = ((s - 3 - phase) // 3 + 1 for s in x.shape[-2:])
    rows = [x[..., phase + t:phase + t + 3 * h:3, :] for t in range(3)]
    r = torch.maximum(rows[0], rows[1])
    r = torch.maximum(r, rows[2], out=r)
    cols = [r[..., phase + t:phase + t + 3 * w:3] for t in range(3)]
    c = torch.maximum(cols[0], cols[1])
    return torch.maximum(c, cols[2], out=c)


def strided_pool_need(need: torch.Tensor, phase: int, in_shape: tuple[int, int]) -> torch.Tensor:
    """Input mask ``in_shape`` of a 3x3 / stride-3 max-pool started at offset ``phase`` whose output mask is
    ``need``: output ``u`` reads inputs ``phase + 3u + (0..2)``."""
    out = need.new_zeros(in_shape)
    hs, ws = need.shape
    for ty in range(3):
        for tx in range(3):
            out[phase + ty:phase + ty + 3 * hs:3, phase + tx:phase + tx + 3 * ws:3] |= need
    return out


def wide_grid_shape(h: int, w: int, phase: int = WIDE_PHASE) -> tuple[int, int]:
    """Shape of the grid of native-stride centres of an ``h x w`` image: the points ``phase + 3u`` whose
    7x7 wide-map grid (``u + 0..6``) lies inside the native-stride maps (positions up to ``h + 17``)."""
    return tuple((s + 17 - phase) // 3 + 1 - 6 for s in (h, w))


def snap_to_wide_grid(ys: torch.Tensor, xs: torch.Tensor, grid: tuple[int, int],
                      phase: int = WIDE_PHASE) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid index ``(uy, ux)`` of the native-stride centre ``phase + 3u`` nearest to each pixel (clamped to
    the ``grid`` shape of :func:`wide_grid_shape`)."""
    uy = torch.div(ys - phase + 1, 3, rounding_mode="floor").clamp_(0, grid[0] - 1)
    ux = torch.div(xs - phase + 1, 3, rounding_mode="floor").clamp_(0, grid[1] - 1)
    return uy, ux


def grid_gather(m: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, n: int, step: int) -> torch.Tensor:
    """``(N, C, n, n)`` values ``m[0, :, ys + step i, xs + step j]`` (``i, j < n``), channels-last memory."""
    off = torch.arange(n, device=m.device) * step
    rows = (ys[:, None] + off)[:, :, None]
    cols = (xs[:, None] + off)[:, None, :]
    return m[0].permute(1, 2, 0)[rows, cols].permute(0, 3, 1, 2)


def streams_dense(streams: KaraaliStreams, padded: torch.Tensor,
                  needs: tuple[torch.Tensor, torch.Tensor] | None = None, sparse_max: float = SPARSE_MAX,
                  phase: int | None = None) -> list[torch.Tensor]:
    """Dense maps of the three ``streams`` on an image reflect-padded by 20: ``(B,64,H+18,W+18)`` x2 and
    ``(B,64,H+6,W+6)``.

    The 7x7 grid of pixel ``(y, x)`` is ``map41[y + 3i, x + 3j]``, ``map27[y + 3i, x + 3j]``,
    ``map15[y + i, x + j]`` (``i, j = 0..6``). ``needs``: the masks of the read positions of
    the wide (41, 27) and the narrow (15) maps (:func:`grid_needs`), or None (all).
    ``phase``: native-stride wide maps (``map[u]`` = position ``phase + 3u``; the grid of the
    centre ``phase + 3u`` is ``map[u + i]``); the 15 map is unchanged.
    """
    h, w = padded.shape[-2] - 40, padded.shape[-1] - 40
    c27, c15 = streams.crop27, streams.crop15
    nw, nn_ = (None, None) if needs is None else needs
    return [stream_dense(streams.s41, padded, nw, sparse_max, phase),
            stream_dense(streams.s27, padded[..., c27:c27 + h + 26, c27:c27 + w + 26], nw, sparse_max, phase),
            stream_dense(streams.s15, padded[..., c15:c15 + h + 14, c15:c15 + w + 14], nn_, sparse_max)]


def pixel_mask(ys: torch.Tensor, xs: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bool ``(h, w)`` mask of the pixels ``(ys, xs)``."""
    m = torch.zeros(h, w, dtype=torch.bool, device=ys.device)
    m[ys, xs] = True
    return m


def grid_needs(pixels: torch.Tensor, phase: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the wide (``H+18``) and narrow (``H+6``) map positions that the trunks of the
    pixels in the bool mask ``pixels`` (``H, W``) read: through the first trunk conv (its 5x5
    output grid at step 3 / 1, then its 3x3 kernel at dilation 3 / 1). ``phase``: the wide mask
    is of the native-stride maps (read by the pixels' nearest grid centres, :func:`snap_to_wide_grid`)."""
    narrow = dilate_need(dilate_need(pixels, 5, 1), 3, 1)
    if phase is None:
        return dilate_need(dilate_need(pixels, 5, 3), 3, 3), narrow
    grid = wide_grid_shape(*pixels.shape, phase)
    centres = pixel_mask(*snap_to_wide_grid(*pixels.nonzero(as_tuple=True), grid, phase), *grid)
    return dilate_need(dilate_need(centres, 5, 1), 3, 1), narrow


def trunk_from_dense(trunk: Trunk, wide: list[torch.Tensor], narrow: torch.Tensor, ys: torch.Tensor,
                     xs: torch.Tensor, chunk: int = 512, sparse_max: float = SPARSE_MAX, winograd: bool | None = None,
                     wide_phase: int | None = None) -> torch.Tensor:
    """Logits at pixels ``(ys, xs)`` from dense stream maps (batch item 0), equal to ``trunk(...)``
    on the pixels' 7x7 grids.

    ``wide``: the stride-3 maps (``H+18``, concatenated in the weight's channel order),
    ``narrow``: the stride-1 15-stream map (``H+6``). The first trunk conv is split by input
    channels and run on the maps (dilation 3 on the wide maps, 1 on the narrow one; only at
    the positions the pixels read, see :func:`~dbd_lightning.ops.sparse_conv.conv2d_at`); its
    5x5 output grid of pixel ``p`` is ``relu(Ga[p + 3k] + Gb[p + k])``. The rest runs per pixel,
    in blocks of ``chunk`` pixels, as matrix products: the second 3x3 conv (5x5 -> 3x3) by
    Winograd's minimal filtering F(3x3, 3x3) (25 instead of 81 products per channel pair;
    ``winograd=None``: for float32/float64, direct otherwise), the third conv, the 1x1 conv and the FCs.
    ``wide_phase``: the wide maps are native-stride maps (:func:`streams_dense` with ``phase``);
    pixel ``p`` reads them at its nearest grid centre ``u``: ``relu(Ga[u + k] + Gb[p + k])``.
    """
    c1, c2, c3, c4 = trunk.convs.convs
    if [c.kernel_size[0] for c in (c1, c2, c3, c4)] != [3, 3, 3, 1]:
        raise ValueError("trunk_from_dense expects the 3x3, 3x3, 3x3, 1x1 trunk")
    w1 = c1.weight
    n_wide = sum(m.shape[1] for m in wide)
    h, w = narrow.shape[-2] - 6, narrow.shape[-1] - 6
    if ys.numel() == 0:
        return w1.new_zeros(0, trunk.fcs[-1].out_features)
    pix = pixel_mask(ys, xs, h, w)
    if wide_phase is None:  # wide grid of pixel p: Ga[p + 3k]
        ya, xa, step = ys, xs, 3
        ga_need = dilate_need(pix, 5, 3)
    else:  # native stride: Ga[u + k] at the nearest grid centre u
        grid = wide_grid_shape(h, w, wide_phase)
        if tuple(wide[0].shape[-2:]) != (grid[0] + 6, grid[1] + 6):
            raise ValueError(f"native-stride wide maps of a {h}x{w} image are {(grid[0] + 6, grid[1] + 6)}, "
                             f"got {tuple(wide[0].shape[-2:])}")
        ya, xa = snap_to_wide_grid(ys, xs, grid, wide_phase)
        step = 1
        ga_need = dilate_need(pixel_mask(ya, xa, *grid), 5, 1)
    ga = conv2d_at(wide, w1[:, :n_wide], step, ga_need, relu=False, sparse_max=sparse_max)
    gb = conv2d_at(narrow, w1[:, n_wide:], 1, dilate_need(pix, 5, 1), relu=False, sparse_max=sparse_max)
    ch = ga.shape[1]
    gaf, gbf = channel_rows(ga), channel_rows(gb)
    wa, wb = ga.shape[-1], gb.shape[-1]
    k = torch.arange(5, device=ys.device)
    off_a = (step * k[:, None] * wa + step * k[None]).reshape(25, 1)
    off_b = (k[:, None] * wb + k[None]).reshape(25, 1)
    if winograd is None:
        winograd = ga.dtype in (torch.float32, torch.float64)
    k2 = c2.weight.shape[0]
    if winograd:
        at, g, bt = (torch.as_tensor(m, dtype=ga.dtype, device=ga.device) for m in winograd_f33())
        u = torch.einsum("ik,ockl,jl->ijco", g, c2.weight, g).reshape(25, ch, k2)
        bk, ak = torch.kron(bt, bt), torch.kron(at, at)  # both 2-D transforms as one product each
    else:
        w2 = c2.weight.permute(0, 2, 3, 1).reshape(k2, -1)
    w3 = c3.weight.permute(0, 2, 3, 1).reshape(c3.weight.shape[0], -1)
    w4 = c4.weight.flatten(1)
    out = []
    for s in range(0, ys.numel(), chunk):
        y, x = ys[s:s + chunk], xs[s:s + chunk]
        n = y.numel()
        # (25, n, C): grid row a, column b, pixel, channel (index_select: 4x faster than gaf[idx])
        g5 = gaf.index_select(0, (off_a + ya[s:s + chunk] * wa + xa[s:s + chunk]).view(-1)).view(25, n, ch)
        g5 += gbf.index_select(0, (off_b + y * wb + x).view(-1)).view(25, n, ch)
        g5.relu_()
        if winograd:  # V = B^T g B, M = V (.) U, Y = A^T M A
            v = (bk @ g5.view(25, -1)).view(25, n, ch)
            m = torch.bmm(v, u)
            h2 = (ak @ m.view(25, -1)).view(9, n, k2).relu_().transpose(0, 1).reshape(n, -1)
        else:
            cols = g5.view(5, 5, n, ch).permute(2, 0, 1, 3).unfold(1, 3, 1).unfold(2, 3, 1)
            cols = cols.permute(0, 1, 2, 4, 5, 3).reshape(n * 9, -1)
            h2 = F.linear(cols, w2).relu_().view(n, -1)
        h3 = F.linear(F.linear(h2, w3).relu_(), w4).relu_()
        out.append(trunk.head(h3))
    return torch.cat(out)


def winograd_f33() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A^T`` (3x5), ``G`` (5x3), ``B^T`` (5x5) of Winograd's F(3, 3): ``y = A^T [(G g) * (B^T d)]``
    is the valid correlation ``y_i = sum_k g_k d_{i+k}`` of a 5-vector ``d`` with a 3-tap ``g``.

    Toom-Cook on the points ``0, 1, -1, -1/2`` and infinity (exact up to rounding; float32
    error about that of the direct sum). ``A^T`` / ``G`` evaluate at the points, ``B^T``
    solves the interpolation identity ``sum_j A^T[i,j] G[j,k] B^T[j,l] = [l = i + k]``.
    """
    return _WINOGRAD_F33


def _toom_cook(m: int, r: int, points: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points")
    at, g = np.zeros((m, n)), np.zeros((n, r))
    for j, a in enumerate(points):
        at[:, j] = [a**i for i in range(m)]
        g[j] = [a**k / math.prod(a - b for b in points if b != a) for k in range(r)]
    at[m - 1, n - 1] = g[n - 1, r - 1] = 1.0  # the point at infinity
    # sum_j at[i, j] g[j, k] bt[j, l] = [l == i + k]: linear in bt, solved exactly (full column rank)
    lhs = np.einsum("ij,jk,jJ,lL->iklJL", at, g, np.eye(n), np.eye(n)).reshape(m * r * n, n * n)
    rhs = np.array([[[float(j == i + k) for j in range(n)] for k in range(r)] for i in range(m)]).reshape(-1)
    bt = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    if np.abs(lhs @ bt - rhs).max() > 1e-12:
        raise ArithmeticError("Toom-Cook points do not give a minimal filtering algorithm")
    exact = np.round(bt * 64) / 64  # dyadic entries for dyadic points: make them exact
    if np.abs(lhs @ exact - rhs).max() == 0.0:
        bt = exact
    return at, g, bt.reshape(n, n)


_WINOGRAD_F33 = _toom_cook(3, 3, (0.0, 1.0, -1.0, -0.5))


def gather_grids(maps: list[torch.Tensor], steps: list[int], ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``(N, sum C, 7, 7)`` grids of the pixels ``(ys, xs)`` from dense maps of batch item 0."""
    return torch.cat([grid_gather(m, ys, xs, 7, s) for m, s in zip(maps, steps, strict=True)], 1)


def head_from_dense(net: torch.nn.Module, maps: list[torch.Tensor], ys: torch.Tensor,
                    xs: torch.Tensor) -> torch.Tensor:
    """Logits of ``net`` (B-NET or E-NET) at pixels ``(ys, xs)`` from its dense stream maps: B-NET's
    :func:`streams_dense` maps, or E-NET's ``[f2 map, *f1 maps]``; the last map is the stride-1 15 stream."""
    steps = [3] * (len(maps) - 1) + [1]
    return net.trunk(gather_grids(maps, steps, ys, xs))
