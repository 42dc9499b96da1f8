"""TENT (models/components/entropy_minimization.py, ``adapt method=tent``): the binary entropy equals its
textbook form, one step moves only the BatchNorm scales and shifts by Adam's first step on the hand-derived
gradient (also with EATA / SAR's reliable-pixel filter and SAR's sharpness-aware step), and the adapted file
keeps every convolution weight."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from dbd_lightning.adapt import main as adapt_main
from dbd_lightning.models.components.entropy_minimization import (
    binary_entropy,
    filtered_entropy,
    minimize_entropy,
    sharpness_aware_gradient,
)

from .run_fixtures import make_run, write_image


def test_binary_entropy_is_minus_p_log_p_minus_q_log_q_and_finite_at_saturation():
    z = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    p = 1 / (1 + torch.exp(-z))
    torch.testing.assert_close(binary_entropy(z), -p * p.log() - (1 - p) * (1 - p).log(), rtol=1e-12, atol=1e-12)
    assert binary_entropy(torch.tensor([0.0])).item() == pytest.approx(math.log(2))
    far = binary_entropy(torch.tensor([-200.0, 200.0]))
    assert torch.isfinite(far).all() and far.abs().max().item() < 1e-30


class ConvBNHead(nn.Module):
    """conv -> BN -> conv, returning a dict as the project's networks do."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 1, 1)
        self.drop = nn.Dropout(0.9)  # must stay off

    def forward(self, x):
        return {"logits": self.head(self.drop(torch.relu(self.bn(self.conv(x)))))}


def test_filtered_entropy_averages_the_confident_pixels_alone():
    z = torch.tensor([0.0, 3.0, -5.0, 0.2, -1.0])
    h = [math.log(2), 0.1909, 0.0402, 0.6882, 0.5822]  # -p ln p - q ln q by hand, p = 1 / (1 + e^-z)
    torch.testing.assert_close(binary_entropy(z), torch.tensor(h), rtol=0, atol=1e-4)
    loss, kept = filtered_entropy(z, 0.4 * math.log(2))  # 0.2773: keeps z = 3 and z = -5
    assert kept == pytest.approx(2 / 5) and loss.item() == pytest.approx((0.1909 + 0.0402) / 2, abs=1e-4)
    loss, kept = filtered_entropy(z)
    assert kept == 1.0 and loss.item() == pytest.approx(sum(h) / 5, abs=1e-4)
    loss, kept = filtered_entropy(z, 0.01)
    assert kept == 0.0 and loss.item() == 0.0


@pytest.mark.parametrize("quantile", [None, 0.4])
def test_one_step_is_adams_first_step_on_the_bn_affine_gradient_alone(quantile):
    net = ConvBNHead()
    net.bn.running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1)) * 2 + 1
    # by hand: the gradient of the mean entropy with batch statistics, the dropout off
    gamma = before["bn.weight"].clone().requires_grad_(True)
    beta = before["bn.bias"].clone().requires_grad_(True)
    f = nn.functional.conv2d(x, before["conv.weight"], before["conv.bias"], padding=1)
    mean, var = f.mean(dim=(0, 2, 3), keepdim=True), f.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    y = (f - mean) / torch.sqrt(var + net.bn.eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    z = nn.functional.conv2d(torch.relu(y), before["head.weight"], before["head.bias"])
    p = torch.sigmoid(z)
    h = -(p * p.log() + (1 - p) * (1 - p).log())
    max_entropy = None if quantile is None else float(h.detach().flatten().quantile(quantile))
    keep = torch.ones_like(h) if max_entropy is None else (h <= max_entropy).to(h.dtype).detach()
    assert max_entropy is None or 0.3 < keep.mean() < 0.5  # the filter drops some pixels, not all
    ((h * keep).sum() / keep.sum()).backward()
    lr = 0.01
    kept: list[float] = []
    losses = minimize_entropy(net, [x], lr=lr, max_entropy=max_entropy, kept=kept)
    assert len(losses) == 1 and losses[0] == pytest.approx(h.mean().item(), rel=1e-5)  # every pixel's entropy
    assert kept == [pytest.approx(keep.mean().item())]
    after = net.state_dict()
    for name, grad in (("bn.weight", gamma.grad), ("bn.bias", beta.grad)):
        # Adam's first step: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps)
        torch.testing.assert_close(after[name], before[name] - lr * grad / (grad.abs() + 1e-8), rtol=0, atol=1e-6)
        assert (after[name] - before[name]).abs().min() > 0.5 * lr
    for name in ("conv.weight", "conv.bias", "head.weight", "head.bias", "bn.running_mean", "bn.running_var",
                 "bn.num_batches_tracked"):
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
    assert not net.training and not net.bn.training and net.bn.momentum == 0.1
    assert all(p.requires_grad and p.grad is None for p in net.parameters())


def _hand_entropy(state: dict, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """ConvBNHead's per-pixel entropy written out: batch statistics, dropout off."""
    f = nn.functional.conv2d(x, state["conv.weight"], state["conv.bias"], padding=1)
    mean, var = f.mean(dim=(0, 2, 3), keepdim=True), f.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    y = (f - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    p = torch.sigmoid(nn.functional.conv2d(torch.relu(y), state["head.weight"], state["head.bias"]))
    return -(p * p.log() + (1 - p) * (1 - p).log())


def _hand_grad(state, x, gamma, beta, eps):
    gamma, beta = gamma.detach().clone().requires_grad_(True), beta.detach().clone().requires_grad_(True)
    _hand_entropy(state, x, gamma, beta, eps).mean().backward()
    return gamma.grad, beta.grad


def test_sharpness_aware_gradient_is_the_gradient_at_the_perturbed_point_and_restores_w():
    """SAR Eq. 4-5: g at w, e = rho g / ||g|| (one norm over every scale and shift), gradient at w + e."""
    net = ConvBNHead()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1)) * 2 + 1
    g_gamma, g_beta = _hand_grad(state, x, state["bn.weight"], state["bn.bias"], net.bn.eps)
    rho = 0.5
    norm = torch.sqrt((g_gamma ** 2).sum() + (g_beta ** 2).sum())
    e_gamma, e_beta = rho * g_gamma / norm, rho * g_beta / norm
    want_gamma, want_beta = _hand_grad(state, x, state["bn.weight"] + e_gamma, state["bn.bias"] + e_beta, net.bn.eps)
    assert not torch.allclose(want_gamma, g_gamma, atol=1e-4)  # the perturbation changes the gradient
    params = _sam_ready(net, x)  # the network as minimize_entropy holds it, gradient g already in .grad
    torch.testing.assert_close(net.bn.weight.grad, g_gamma, rtol=1e-4, atol=1e-6)
    assert sharpness_aware_gradient(net, x, params, rho)[0] == 1.0
    torch.testing.assert_close(net.bn.weight.grad, want_gamma, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(net.bn.bias.grad, want_beta, rtol=1e-4, atol=1e-6)
    for k, v in net.state_dict().items():  # w is back, bit for bit (the batch counter is minimize_entropy's)
        assert k == "bn.num_batches_tracked" or torch.equal(v, state[k]), k


def _sam_ready(net: ConvBNHead, x: torch.Tensor) -> list[nn.Parameter]:
    """``net`` as minimize_entropy holds it (batch statistics, only the BatchNorm affine trainable), with the
    plain gradient at ``w`` in ``.grad``."""
    net.eval()
    net.bn.train()
    net.bn.momentum = 0.0
    for p in net.parameters():
        p.requires_grad_(p is net.bn.weight or p is net.bn.bias)
    binary_entropy(net(x)["logits"]).mean().backward()
    return [net.bn.weight, net.bn.bias]


def test_sam_with_the_filter_keeps_the_pixels_reliable_at_both_points():
    """SAR filters the first pass's reliable pixels again: the perturbed loss averages the pixels under E0 at
    w + e that were also under E0 at w."""
    net = ConvBNHead()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1)) * 2 + 1
    params = _sam_ready(net, x)
    g_gamma, g_beta = params[0].grad.clone(), params[1].grad.clone()
    norm = torch.sqrt((g_gamma ** 2).sum() + (g_beta ** 2).sum())
    rho = 0.5
    h_w = _hand_entropy(state, x, state["bn.weight"], state["bn.bias"], net.bn.eps).detach()
    e0 = float(h_w.flatten().median())
    kept_at_w = h_w <= e0
    gamma = (state["bn.weight"] + rho * g_gamma / norm).requires_grad_(True)
    beta = (state["bn.bias"] + rho * g_beta / norm).requires_grad_(True)
    h = _hand_entropy(state, x, gamma, beta, net.bn.eps)
    both = ((h.detach() <= e0) & kept_at_w).to(h.dtype)
    assert 0 < both.sum() < ((h.detach() <= e0).sum())  # the first pass's filter removes some pixels
    ((h * both).sum() / both.sum()).backward()
    fraction, loss = sharpness_aware_gradient(net, x, params, rho, max_entropy=e0, kept_at_w=kept_at_w)
    assert fraction == pytest.approx(both.mean().item())
    assert loss == pytest.approx(((h * both).sum() / both.sum()).item(), rel=1e-5)  # SAR's L at w + e
    torch.testing.assert_close(params[0].grad, gamma.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(params[1].grad, beta.grad, rtol=1e-4, atol=1e-6)
    # nothing kept at w: no gradient and no step (0 returned)
    _sam_ready(net, x)
    assert sharpness_aware_gradient(net, x, params, rho, max_entropy=e0,
                                    kept_at_w=torch.zeros_like(kept_at_w)) == (0.0, None)
    assert params[0].grad is None and params[1].grad is None
    assert torch.equal(net.bn.weight, state["bn.weight"]) and torch.equal(net.bn.bias, state["bn.bias"])


def test_sam_at_a_flat_or_broken_gradient():
    net = ConvBNHead()
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    params = _sam_ready(net, x)
    before = [p.detach().clone() for p in params]
    for p in params:  # flat: the zero gradient is already the sharpness-aware one
        p.grad = torch.zeros_like(p)
    assert sharpness_aware_gradient(net, x, params, 0.5) == (1.0, None)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in params)
    params[0].grad[0] = float("nan")  # non-finite: no step, the gradients dropped
    assert sharpness_aware_gradient(net, x, params, 0.5) == (0.0, None)
    assert all(p.grad is None for p in params)
    assert sharpness_aware_gradient(net, x, params, 0.5) == (0.0, None)  # no gradient at all
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sam_rho"):
            minimize_entropy(ConvBNHead(), [x], lr=0.01, sam_rho=bad)
    with pytest.raises(ValueError, match="rho"):
        sharpness_aware_gradient(net, x, params, 0.0)


def test_minimize_entropy_with_sam_steps_on_the_perturbed_gradient():
    net, plain = ConvBNHead(), ConvBNHead()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1)) * 2 + 1
    g_gamma, g_beta = _hand_grad(state, x, state["bn.weight"], state["bn.bias"], net.bn.eps)
    rho = 3.0  # large, so that some coordinates of the perturbed gradient change sign
    norm = torch.sqrt((g_gamma ** 2).sum() + (g_beta ** 2).sum())
    s_gamma, s_beta = _hand_grad(state, x, state["bn.weight"] + rho * g_gamma / norm,
                                 state["bn.bias"] + rho * g_beta / norm, net.bn.eps)
    assert (torch.sign(torch.cat([s_gamma, s_beta])) != torch.sign(torch.cat([g_gamma, g_beta]))).any()
    lr = 0.01
    minimize_entropy(net, [x], lr=lr, sam_rho=rho)
    minimize_entropy(plain, [x], lr=lr)
    after = net.state_dict()
    for name, grad in (("bn.weight", s_gamma), ("bn.bias", s_beta)):  # Adam's first step on the SAM gradient
        torch.testing.assert_close(after[name], state[name] - lr * grad / (grad.abs() + 1e-8), rtol=0, atol=1e-6)
    assert not torch.equal(after["bn.weight"], plain.state_dict()["bn.weight"]) or not torch.equal(
        after["bn.bias"], plain.state_dict()["bn.bias"])
    for name in ("conv.weight", "head.weight", "bn.running_mean", "bn.running_var"):
        assert torch.equal(after[name], state[name]), name
    assert all(p.requires_grad and p.grad is None for p in net.parameters())


def test_a_batch_with_no_pixel_under_the_filter_moves_nothing():
    net = ConvBNHead()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    kept: list[float] = []
    stepped: list[bool] = []
    minimize_entropy(net, [x, x], lr=0.1, max_entropy=1e-12, kept=kept, stepped=stepped)
    assert kept == [0.0, 0.0] and stepped == [False, False]
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    stepped.clear()  # and a batch that passes the filter does step
    minimize_entropy(net, [x], lr=0.1, stepped=stepped)
    assert stepped == [True] and not torch.equal(net.bn.weight, before["bn.weight"])


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_a_batch_with_a_non_finite_gradient_moves_nothing(rho):
    # one NaN pixel makes the batch statistics, hence every BatchNorm gradient, NaN: Adam would spread it to
    # every scale and shift; the batch is skipped instead, and the clean batch after it still steps
    net = ConvBNHead()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    clean = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    bad = clean.clone()
    bad[0, 0, 2, 2] = float("nan")
    stepped: list[bool] = []
    minimize_entropy(net, [bad], lr=0.1, sam_rho=rho, stepped=stepped)
    assert stepped == [False]
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    minimize_entropy(net, [clean], lr=0.1, sam_rho=rho, stepped=stepped)
    assert stepped == [False, True] and torch.isfinite(net.bn.weight).all()
    assert not torch.equal(net.bn.weight, before["bn.weight"])


def test_entropy_falls_over_steps_and_no_bn_is_an_error():
    net = ConvBNHead()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    losses = minimize_entropy(net, [x] * 30, lr=0.05)
    assert losses[-1] < 0.8 * losses[0]
    with pytest.raises(ValueError, match="no BatchNorm"):
        minimize_entropy(nn.Sequential(nn.Conv2d(3, 1, 1)), [x], lr=0.1)


def test_cli_method_tent_changes_only_the_batchnorm_tensors(tmp_path, capsys):
    from dbd_lightning import load_predictor

    run = make_run(tmp_path / "runs", seed=0)
    photos = tmp_path / "photos"
    for i, (h, w) in enumerate([(40, 60), (50, 50), (70, 30), (64, 64)]):
        write_image(photos / f"p{i}.png", h, w, seed=i)
    adabn, tent = tmp_path / "a" / "m_adabn.safetensors", tmp_path / "t" / "m_tent.safetensors"
    common = [f"ckpt={run}", f"photos={photos}", "batch=2"]
    assert adapt_main([*common, f"out={adabn}"]) == 0
    assert adapt_main([*common, f"out={tent}", "method=tent", "tent_lr=0.01", "tent_epochs=2"]) == 0
    a, t = load_file(adabn), load_file(tent)
    assert a.keys() == t.keys()
    bn_names = {k.rsplit(".", 1)[0] for k in a if k.endswith("running_mean")}
    changed = [k for k in a if not torch.equal(a[k], t[k])]
    assert changed and all(k.rsplit(".", 1)[0] in bn_names for k in changed)  # convolutions untouched
    assert any(k.endswith(".weight") for k in changed) and any(k.endswith(".bias") for k in changed)
    card = tent.with_suffix(".md").read_text()
    assert "method=tent" in card and "4 Adam steps of lr 0.01 over 2 pass(es)" in card
    rgb = np.full((40, 40, 3), 120, np.uint8)
    rgb[:, :20] = 30
    assert load_predictor(str(tent), device="cpu", backend="torch")(rgb).shape == (40, 40)
    # a released file that lost its card adapts too; the new card says the source's data is not stated
    bare = tmp_path / "bare" / "m_bare.safetensors"
    bare.parent.mkdir()
    bare.write_bytes(adabn.read_bytes())
    again_bare = tmp_path / "bare2" / "m.safetensors"
    assert adapt_main([f"ckpt={bare}", f"photos={photos}", "batch=2", f"out={again_bare}"]) == 0
    assert f"Training data: not stated (no model card {bare.with_suffix('.md')} beside the weights)" in (
        again_bare.with_suffix(".md").read_text())
    # the Python form (README) writes the same tensors as the command
    from dbd_lightning.adapt import adapt

    again = adapt(str(run), str(photos), str(tmp_path / "py" / "m.safetensors"), method="tent", batch=2,
                  tent_lr=0.01, tent_epochs=2)
    assert all(torch.equal(v, t[k]) for k, v in load_file(again).items())
    # the reliable-pixel filter: named on the card and in its command, and it changes the result
    filtered = tmp_path / "f" / "m_f.safetensors"
    assert adapt_main([*common, f"out={filtered}", "method=tent", "tent_lr=0.01", "tent_epochs=2",
                       "tent_entropy_margin=0.9"]) == 0  # this tiny random network: 17-28 % of the pixels kept
    card = filtered.with_suffix(".md").read_text()
    assert "of the pixels at most 0.9 ln 2 (" in card and "tent_entropy_margin=0.9" in card
    assert "4 Adam steps" in card
    f = load_file(filtered)
    assert any(not torch.equal(f[k], t[k]) for k in changed) and any(not torch.equal(f[k], a[k]) for k in changed)
    # SAR's sharpness-aware step: named on the card and in its command, and it changes the result
    sam = tmp_path / "s" / "m_s.safetensors"
    assert adapt_main([*common, f"out={sam}", "method=tent", "tent_lr=0.01", "tent_epochs=2", "tent_sam_rho=5"]) == 0
    card = sam.with_suffix(".md").read_text()
    assert "with SAR's sharpness-aware gradient (rho 5)" in card and "tent_sam_rho=5" in card
    assert "tent_sam_rho" not in tent.with_suffix(".md").read_text()
    assert any(not torch.equal(load_file(sam)[k], t[k]) for k in changed)
    # a filter that keeps no pixel: no step at all would be AdaBN labelled TENT: refused, nothing written
    none = tmp_path / "n" / "m_n.safetensors"
    with pytest.raises(SystemExit) as exc:
        adapt_main([*common, f"out={none}", "method=tent", "tent_lr=0.01", "tent_epochs=2", "tent_entropy_margin=1e-9"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "TENT took no step in 4 batches" in err and "tent_entropy_margin=1e-09" in err
    assert not none.exists() and not none.with_suffix(".md").exists()
    # SAR's recovery at a threshold above every step's loss: a reset after each of the 4 steps, so the
    # scales and shifts end where they started and the file is AdaBN's
    reset = tmp_path / "r" / "m_r.safetensors"
    assert adapt_main([*common, f"out={reset}", "method=tent", "tent_lr=0.01", "tent_epochs=2",
                       "tent_reset_margin=0.99"]) == 0
    card = reset.with_suffix(".md").read_text()
    assert "SAR's model recovery below 0.99 ln 2 (4 resets, after step(s) 1, 2, 3, 4)" in card
    assert "tent_reset_margin=0.99" in card and "tent_reset_margin" not in tent.with_suffix(".md").read_text()
    assert all(torch.equal(v, a[k]) for k, v in load_file(reset).items())


def test_cli_card_counts_a_batch_that_took_no_step(tmp_path, monkeypatch):
    # the first batch's gradient is refused (as a non-finite one is): 3 of the 4 batches step, the card says so,
    # and the file is not the one where all 4 stepped
    import dbd_lightning.models.components.entropy_minimization as entropy_minimization

    real, calls = entropy_minimization._step_gradient, []

    def first_refused(*args, **kwargs):
        calls.append(None)
        return None if len(calls) == 1 else real(*args, **kwargs)

    run = make_run(tmp_path / "runs", seed=0)
    photos = tmp_path / "photos"
    for i, (h, w) in enumerate([(40, 60), (50, 50), (70, 30), (64, 64)]):
        write_image(photos / f"p{i}.png", h, w, seed=i)
    common = [f"ckpt={run}", f"photos={photos}", "batch=2", "method=tent", "tent_lr=0.01", "tent_epochs=2"]
    full, partial = tmp_path / "a" / "m_all.safetensors", tmp_path / "p" / "m_part.safetensors"
    assert adapt_main([*common, f"out={full}"]) == 0
    assert "took no step" not in full.with_suffix(".md").read_text()
    monkeypatch.setattr(entropy_minimization, "_step_gradient", first_refused)
    assert adapt_main([*common, f"out={partial}"]) == 0
    assert len(calls) == 4
    card = partial.with_suffix(".md").read_text()
    assert ("3 Adam steps of lr 0.01 over 2 pass(es) (1 of the 4 batches of all passes took no step: no pixel in "
            "the loss or a non-finite gradient)") in card
    f, p = load_file(full), load_file(partial)
    assert any(not torch.equal(f[k], p[k]) for k in f)


@pytest.mark.parametrize("arg, key", [("method=tnet", "method"), ("tent_lr=0", "tent_lr"),
                                      ("tent_lr=fast", "tent_lr"), ("tent_epochs=0", "tent_epochs"),
                                      ("tent_entropy_margin=0", "tent_entropy_margin"),
                                      ("tent_entropy_margin=1.5", "tent_entropy_margin"),
                                      ("tent_sam_rho=-0.1", "tent_sam_rho"), ("tent_sam_rho=nan", "tent_sam_rho"),
                                      ("tent_reset_margin=-1", "tent_reset_margin"),
                                      ("tent_reset_margin=1", "tent_reset_margin"),
                                      ("tent_reset_margin=0.4 tent_entropy_margin=0.4", "tent_reset_margin")])
def test_cli_bad_tent_values_exit_2_naming_the_key(tmp_path, capsys, arg, key):
    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    with pytest.raises(SystemExit) as exc:
        adapt_main([f"ckpt={run}", f"photos={tmp_path / 'photos'}", f"out={tmp_path / 'o.safetensors'}", *arg.split()])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error:") and key in err and "Traceback" not in err
    assert not (tmp_path / "o.safetensors").exists()


def _moving_average(losses: list[float]) -> list[float]:
    """SAR's e_m after each step, by hand: the first loss, then 0.9 e_m + 0.1 L."""
    out: list[float] = []
    for loss in losses:
        out.append(loss if not out else 0.9 * out[-1] + 0.1 * loss)
    return out


def test_sar_recovery_resets_when_the_moving_average_falls_below_the_threshold():
    # the same batch each step, no filter: each step's loss is the entropy minimize_entropy returns for it;
    # a threshold between e_m after step 4 and after step 5 resets after step 5 (index 4); the scales and
    # shifts are then those before the first step and Adam starts afresh, so the run repeats itself from there
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    plain = minimize_entropy(ConvBNHead(), [x] * 12, lr=0.05)
    e_m = _moving_average(plain)
    assert all(b < a for a, b in zip(e_m[:-1], e_m[1:], strict=True))  # falling, so the crossing is at one step
    threshold = (e_m[3] + e_m[4]) / 2
    net, resets = ConvBNHead(), []
    start = net.bn.weight.detach().clone(), net.bn.bias.detach().clone()
    losses = minimize_entropy(net, [x] * 12, lr=0.05, reset_entropy=threshold, resets=resets)
    assert resets == [4, 9]  # and again five steps later: the run repeats
    assert losses[:5] == plain[:5]
    assert losses[5:10] == pytest.approx(plain[:5], rel=1e-6, abs=1e-7)
    assert losses[10:] == pytest.approx(plain[:2], rel=1e-6, abs=1e-7)
    # without the threshold nothing resets; after a reset on the last batch, the scales are the start's
    net, resets = ConvBNHead(), []
    minimize_entropy(net, [x] * 5, lr=0.05, reset_entropy=threshold, resets=resets)
    assert resets == [4]
    assert torch.equal(net.bn.weight, start[0]) and torch.equal(net.bn.bias, start[1])
    none: list[int] = []
    minimize_entropy(ConvBNHead(), [x] * 12, lr=0.05, resets=none)
    assert none == []


def test_sar_recovery_goes_to_the_given_point_and_rejects_bad_values():
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    net = ConvBNHead()
    point = [torch.full_like(net.bn.weight, 0.5), torch.full_like(net.bn.bias, -0.25)]
    resets: list[int] = []
    minimize_entropy(net, [x], lr=0.05, reset_entropy=1.0, resets=resets, recovery=point)  # H < ln 2 < 1: reset
    assert resets == [0]
    assert torch.equal(net.bn.weight, point[0]) and torch.equal(net.bn.bias, point[1])
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="reset_entropy"):
            minimize_entropy(ConvBNHead(), [x], lr=0.01, reset_entropy=bad)
    with pytest.raises(ValueError, match="recovery"):
        minimize_entropy(ConvBNHead(), [x], lr=0.01, reset_entropy=0.1, recovery=point[:1])


def test_sar_recovery_with_sam_averages_the_loss_at_the_perturbed_point():
    # SAR's e_m takes the second (perturbed) loss: a threshold between the loss at w and the one at w + e
    # resets only if the loss at w were used
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    net, rho = ConvBNHead(), 0.5
    params = _sam_ready(net, x)
    at_w = float(binary_entropy(net(x)["logits"]).mean().detach())
    _, there = sharpness_aware_gradient(net, x, params, rho)
    assert there > at_w
    for threshold, want in (((at_w + there) / 2, []), (there * 1.001, [0])):
        resets: list[int] = []
        minimize_entropy(ConvBNHead(), [x], lr=0.05, sam_rho=rho, reset_entropy=threshold, resets=resets)
        assert resets == want


class _Photos:
    """adapt._tent's view of a photo folder and a predictor: item i's image is a fixed random tensor."""

    def __init__(self, n: int):
        self.images = [torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(10 + i)) for i in range(n)]
        self.net = ConvBNHead()

    def __getitem__(self, i):
        return {"image": self.images[i]}

    def network_input(self, images):
        return None, torch.stack(images)


def test_tent_passes_recover_to_where_the_first_pass_started():
    # two passes of two batches; the threshold is crossed only at the last step of the second pass (whose
    # moving average restarts lower), so the recovery point matters: the first pass's start, not the second's
    from dbd_lightning.adapt import _tent

    photos = _Photos(4)
    start = [p.detach().clone() for p in (photos.net.bn.weight, photos.net.bn.bias)]
    entropies, _, stepped, resets = _tent(photos, photos, [0, 1, 2, 3], 2, False, 0, 0.05, 2, 1.0)
    assert resets == [] and stepped == [True] * 4
    first, second = _moving_average(entropies[:2]), _moving_average(entropies[2:])
    assert second[1] < min(second[0], *first)
    margin = (second[1] + min(second[0], *first)) / 2 / math.log(2)
    photos.net = ConvBNHead()
    _, _, _, resets = _tent(photos, photos, [0, 1, 2, 3], 2, False, 0, 0.05, 2, 1.0, reset_margin=margin)
    assert resets == [3]
    assert torch.equal(photos.net.bn.weight, start[0]) and torch.equal(photos.net.bn.bias, start[1])
