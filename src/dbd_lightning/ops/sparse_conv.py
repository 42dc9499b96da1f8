"""VALID convolutions evaluated only where their output is needed (exact, for dense "shift-and-stitch" nets).

A dense map of a patch network is usually read at a few places only (e.g. the 7x7 grids
of the edge pixels in Karaali's nets). ``need`` masks say which output positions are read;
:func:`dilate_need` turns the mask of a layer's output into the mask of its input (the
receptive field of a ``k x k`` kernel with dilation ``d``), and :func:`conv2d_at` computes a
layer only at its needed positions: gather the ``k*k`` input vectors of each position
(channels-last rows) and one matrix product, no per-position loop. Positions not needed are
0. Where most positions are needed, the ordinary dense convolution is faster; ``sparse_max``
is the needed fraction up to which the gathered form is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dilate_need", "conv2d_at", "conv2d_relu", "channel_rows", "SPARSE_MAX"]

#: needed fraction of the output up to which :func:`conv2d_at` gathers instead of running the dense conv
#: (measured on a 2-core AVX2 CPU: the gather + GEMM costs 1.3-2x oneDNN's dense conv per position)
SPARSE_MAX = 0.55


def dilate_need(need: torch.Tensor, k: int, d: int = 1) -> torch.Tensor:
    """Input mask ``(H + d(k-1), W + d(k-1))`` of a VALID ``k x k`` conv (dilation ``d``) whose
    output mask is ``need`` ``(H, W)``: input ``q`` is needed when some needed output ``p`` has
    ``q = p + d t`` (``t`` in ``[0, k)^2``)."""
    if need.dim() != 2:
        raise ValueError(f"need must be a 2-D mask, got shape {tuple(need.shape)}")
    h, w = need.shape
    r = d * (k - 1)
    rows = need.new_zeros(h + r, w)
    for t in range(k):
        rows[d * t:d * t + h] |= need
    out = need.new_zeros(h + r, w + r)
    for t in range(k):
        out[:, d * t:d * t + w] |= rows
    return out


_FUSED: list[bool] = []  # lazily: does this torch build have oneDNN's fused conv + ReLU op?


def _fused_ok(x: torch.Tensor) -> bool:
    if not _FUSED:
        _FUSED.append(torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))
    return _FUSED[0] and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16)


def conv2d_relu(x: torch.Tensor, weight: torch.Tensor, dilation: int = 1, relu: bool = True) -> torch.Tensor:
    """``relu(conv2d(x, weight, dilation=dilation))`` (VALID, no bias); on the CPU with the ReLU fused
    into the oneDNN convolution (one pass less over the output; the same values)."""
    if relu and _fused_ok(x):
        try:
            return torch.ops.mkldnn._convolution_pointwise(x, weight, None, [0, 0], [1, 1], [dilation, dilation], 1,
                                                           "relu", [], "")
        except RuntimeError:  # layout / build without the fused op: plain path
            pass
    y = F.conv2d(x, weight, None, 1, 0, dilation)
    return y.relu_() if relu else y


def _conv_sum(xs: list[torch.Tensor], weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """``conv2d(cat(xs, 1), weight)`` as a sum of per-input convs, each accumulated in place by oneDNN
    (no concatenated copy of the inputs)."""
    c = [x.shape[1] for x in xs]
    starts = [sum(c[:i]) for i in range(len(c))]
    out = F.conv2d(xs[0], weight[:, :c[0]], None, 1, 0, dilation)
    for x, c0, ci in zip(xs[1:], starts[1:], c[1:], strict=True):
        torch.ops.mkldnn._convolution_pointwise_.binary(out, x, weight[:, c0:c0 + ci].contiguous(), None, [0, 0],
                                                         [1, 1], [dilation, dilation], 1, "add", 1.0, None, [], None)
    return out


def channel_rows(x: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(H*W, C)`` rows (a view for channels-last memory)."""
    return x[0].permute(1, 2, 0).reshape(-1, x.shape[1])


def conv2d_at(
    inputs: torch.Tensor | list[torch.Tensor],
    weight: torch.Tensor,
    dilation: int = 1,
    need: torch.Tensor | None = None,
    relu: bool = True,
    sparse_max: float = SPARSE_MAX,
    chunk: int = 512,
) -> torch.Tensor:
    """``[relu](conv2d(cat(inputs, 1), weight, dilation=dilation))`` (VALID, no bias) at the ``need`` positions.

    ``inputs``: one ``(1, C, H, W)`` map or several (concatenated along channels, in order, as the
    weight's input channels); ``need``: bool ``(H - d(k-1), W - d(k-1))`` or None (all). Returns
    ``(1, K, H', W')`` (channels-last memory when gathered); positions not needed are 0 there,
    arbitrary (the dense values) when the dense conv ran.
    """
    xs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    k_out, c_in, kh, kw = weight.shape
    if sum(x.shape[1] for x in xs) != c_in:
        raise ValueError(f"inputs have {sum(x.shape[1] for x in xs)} channels, the weight takes {c_in}")
    h, w = xs[0].shape[-2:]
    ho, wo = h - dilation * (kh - 1), w - dilation * (kw - 1)
    if need is not None and tuple(need.shape) != (ho, wo):
        raise ValueError(f"need has shape {tuple(need.shape)}, the conv output is {(ho, wo)}")
    if need is None or xs[0].shape[0] != 1 or need.float().mean().item() > sparse_max:
        if len(xs) > 1 and not relu and _fused_ok(xs[0]):
            try:
                return _conv_sum(xs, weight, dilation)
            except (RuntimeError, AttributeError):  # no in-place fused add in this build: concatenate
                pass
        return conv2d_relu(xs[0] if len(xs) == 1 else torch.cat(xs, 1), weight, dilation, relu)
    q = need.reshape(-1).nonzero().squeeze(1)
    base = (q // wo) * w + q % wo  # flat input index of each output's first tap
    ty, tx = torch.meshgrid(torch.arange(kh, device=q.device), torch.arange(kw, device=q.device), indexing="ij")
    off = (dilation * (ty * w + tx)).reshape(-1)
    # per input: weight (K, C_i, kh, kw) -> (K, kh*kw*C_i), tap-major like the gathered rows
    mats, c0 = [], 0
    for x in xs:
        c = x.shape[1]
        mats.append(weight[:, c0:c0 + c].permute(0, 2, 3, 1).reshape(k_out, -1))
        c0 += c
    flats = [channel_rows(x) for x in xs]
    out = torch.zeros(1, ho, wo, k_out, dtype=xs[0].dtype, device=xs[0].device).permute(0, 3, 1, 2)  # NHWC memory
    out_flat = channel_rows(out)
    for s in range(0, q.numel(), chunk):
        idx = base[s:s + chunk, None] + off
        y = None
        for xf, m in zip(flats, mats, strict=True):
            cols = xf.index_select(0, idx.reshape(-1)).view(idx.shape[0], -1)  # 4x faster than xf[idx]
            y = F.linear(cols, m) if y is None else y.addmm_(cols, m.t())
        out_flat.index_copy_(0, q[s:s + chunk], y.relu_() if relu else y)
    return out
