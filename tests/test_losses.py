import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from dbd_lightning.losses.detection import DeepSupervisionLoss
from dbd_lightning.losses.dof_edge import DOFEdgeDiceLoss, dof_edges

LAP = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype=np.float64)


def step_mask(h=8, w=8, col=4):
    m = torch.zeros(1, 1, h, w)
    m[..., :col] = 1.0
    return m


def test_gt_edges_of_a_step_are_two_pixels_wide():
    edges = dof_edges(step_mask(), padding="replicate")[0, 0]
    cols = edges.sum(0)
    assert cols.tolist() == [0, 0, 0, 8, 8, 0, 0, 0]  # columns 3 and 4 on either side of the step


def test_zero_padding_also_marks_the_border_where_mask_is_one():
    edges = dof_edges(step_mask(), padding="zeros")[0, 0]
    assert edges[:, 0].all() and edges[0, :4].all() and edges[-1, :4].all()  # the authors' quirk
    assert not edges[1:-1, 6:].any()  # blurred side: no border response


def reference_dice_loss(logits: np.ndarray, mask: np.ndarray, mode: str) -> float:
    """Independent numpy/scipy computation of D-DFFNet eq. 4 for one sample."""
    prob = 1 / (1 + np.exp(-logits))
    nd_mode = "constant" if mode == "zeros" else "nearest"
    e = ndimage.convolve(prob, LAP, mode=nd_mode, cval=0.0)
    p = e**2 / (e**2 + 1)
    t = (ndimage.convolve(mask, LAP, mode=nd_mode, cval=0.0) != 0).astype(np.float64)
    return 1 - (2 * (p * t).sum() + 1) / ((p**2).sum() + (t**2).sum() + 1)


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_dice_matches_independent_reference(padding):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1, 12, 10)) * 3
    mask = (rng.random((3, 1, 12, 10)) > 0.5).astype(np.float64)
    expected = [reference_dice_loss(logits[i, 0], mask[i, 0], padding) for i in range(3)]
    mean = DOFEdgeDiceLoss(padding=padding)(torch.tensor(logits).float(), torch.tensor(mask).float())
    total = DOFEdgeDiceLoss(padding=padding, reduction="sum")(torch.tensor(logits).float(), torch.tensor(mask).float())
    assert mean.item() == pytest.approx(np.mean(expected), abs=1e-5)
    assert total.item() == pytest.approx(np.sum(expected), abs=1e-5)


def test_dice_is_low_for_a_sharp_correct_prediction_and_high_for_a_flat_one():
    mask = step_mask(16, 16, 8)
    good = DOFEdgeDiceLoss(padding="replicate")((mask * 2 - 1) * 20, mask)
    flat = DOFEdgeDiceLoss(padding="replicate")(torch.zeros_like(mask), mask)
    # flat map: p = 0 everywhere, t has 2 x 16 edge pixels -> 1 - (0 + 1) / (0 + 32 + 1)
    assert flat.item() == pytest.approx(1 - 1 / 33, abs=1e-7)
    assert good.item() < 0.2
    assert good.item() < flat.item()


def test_bad_options_raise():
    with pytest.raises(ValueError, match="padding"):
        DOFEdgeDiceLoss(padding="reflect")
    with pytest.raises(ValueError, match="reduction"):
        DOFEdgeDiceLoss(reduction="none")


def test_deep_supervision_composition_eq6():
    torch.manual_seed(1)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    outputs = {"logits": torch.randn(2, 1, 16, 16), "side_logits": [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 8, 8)]}
    edge = DOFEdgeDiceLoss()
    loss = DeepSupervisionLoss(edge_loss=edge, edge_weight=0.5, main_weight=1.1, side_weights=[1.0, 2.0])
    terms = loss(outputs, {"mask": mask})

    def ld(logit):
        up = F.interpolate(logit, size=(16, 16), mode="bilinear", align_corners=True)
        return F.binary_cross_entropy_with_logits(up, mask) + 0.5 * edge(up, mask)

    expected = 1.1 * ld(outputs["logits"]) + 1.0 * ld(outputs["side_logits"][0]) + 2.0 * ld(outputs["side_logits"][1])
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == {"loss", "bce", "edge", "side_bce", "side_edge"}


def test_bce_only_loss_and_side_weight_mismatch():
    mask = torch.ones(1, 1, 8, 8)
    out = {"logits": torch.zeros(1, 1, 8, 8), "side_logits": [torch.zeros(1, 1, 2, 2)]}
    terms = DeepSupervisionLoss(edge_loss=None)(out, {"mask": mask})
    assert terms["loss"].item() == pytest.approx(2 * np.log(2), rel=1e-6)
    assert "edge" not in terms
    with pytest.raises(ValueError, match="2 side_weights given for 1 side outputs"):
        DeepSupervisionLoss(side_weights=[1.0, 1.0])(out, {"mask": mask})
