"""DFFNet + the paper loss can fit one synthetic batch (the whole pipeline learns)."""

import torch

from dbd_lightning.data.samples import TransformedDataset, collate_samples
from dbd_lightning.data.synthetic.dataset import SyntheticDefocusDataset
from dbd_lightning.data.transforms import build_eval_transform
from dbd_lightning.losses.detection import DeepSupervisionLoss
from dbd_lightning.losses.dof_edge import DOFEdgeDiceLoss
from dbd_lightning.models.dffnet import DFFNet


def _batch(n=2, size=64):
    raw = SyntheticDefocusDataset(length=n, seed=7, preset="shallow", size=size)
    ds = TransformedDataset(raw, build_eval_transform(size=(size, size)))
    return collate_samples([ds[i] for i in range(n)])


def _fit(loss_fn, steps, lr=2e-3):
    torch.manual_seed(0)
    batch = _batch()
    net = DFFNet("resnet18").train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        terms = loss_fn(net(batch["image"]), batch)
        terms["loss"].backward()
        opt.step()
        losses.append({k: float(v) for k, v in terms.items()})
    return losses


def test_bce_overfits_one_batch_by_a_large_factor():
    losses = _fit(DeepSupervisionLoss(edge_loss=None, edge_weight=0.0), steps=40)
    assert losses[-1]["loss"] < losses[0]["loss"] / 10, (losses[0], losses[-1])


def test_bce_plus_dof_edge_loss_decreases_both_terms():
    losses = _fit(DeepSupervisionLoss(edge_loss=DOFEdgeDiceLoss(padding="replicate"), edge_weight=0.5), steps=40)
    first, last = losses[0], losses[-1]
    assert last["loss"] < first["loss"] / 3, (first, last)
    assert last["bce"] < first["bce"] / 5
    assert last["edge"] < first["edge"] * 0.8
