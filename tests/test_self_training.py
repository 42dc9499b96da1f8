"""Self-training pieces against hand-computed cases: the unlabeled loader, the EMA teacher update,
the confident, view-consistent pseudo-labels, and one training step on a mixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dbd_lightning.data.benchmarks.splits import cuhk_te1_entries
from dbd_lightning.data.errors import DataConfigError
from dbd_lightning.data.samples import TransformedDataset, collate_samples
from dbd_lightning.data.transforms import build_train_transform
from dbd_lightning.data.unlabeled import MixedLabeledUnlabeled, UnlabeledFolder
from dbd_lightning.tasks.self_training import confident_pseudo_labels, ema_update


def _photos(folder, names, size=(12, 16)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), 10 * i, np.uint8)).save(folder / name)
    return folder


def test_unlabeled_folder_reads_plain_photos_without_masks(tmp_path):
    root = _photos(tmp_path / "photos", ["b.jpg", "a.png", "c.JPG"])
    (root / "notes.txt").write_text("not an image")
    ds = UnlabeledFolder(root)
    assert [p.name for p in ds.files] == ["a.png", "b.jpg", "c.JPG"]
    s = ds[0]
    assert s["image"].shape == (12, 16, 3) and s["labeled"] == 0 and s["name"] == "a"
    assert s["mask"].shape == (12, 16) and s["mask"].max() == 0
    with pytest.raises(DataConfigError, match="data.unlabeled_root"):
        UnlabeledFolder(tmp_path / "nowhere")
    with pytest.raises(DataConfigError, match="no images"):
        UnlabeledFolder(_photos(tmp_path / "empty", []))


def test_unlabeled_folder_length_repeats_the_photos_in_order(tmp_path):
    root = _photos(tmp_path / "photos", ["a.jpg", "b.jpg", "c.jpg"])
    ds = UnlabeledFolder(root, length=7)
    assert len(ds) == 7
    assert [ds[i]["name"] for i in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert ds[4]["image"][0, 0, 0] == ds[1]["image"][0, 0, 0] == 10  # the second photo's grey level
    assert "7 draws" in ds.describe() and "3 images" in ds.describe()
    with pytest.raises(IndexError):
        ds[7]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DataConfigError, match="length"):
            UnlabeledFolder(root, length=bad)
    assert len(UnlabeledFolder(root, length=None)) == 3


def test_unlabeled_cuhk_folder_leaves_out_te1_and_the_holdout(tmp_path):
    from dbd_lightning.data.benchmarks import CUHK

    from .benchmark_trees import make_cuhk

    make_cuhk(tmp_path / "CUHK", motion=0)
    ds = UnlabeledFolder(tmp_path / "CUHK" / "image", exclude_cuhk_tr1_holdout=60)
    held = {p.stem.lower() for p, _ in CUHK(tmp_path / "CUHK", split="tr1_val").pairs}
    te1 = {n for _, n in cuhk_te1_entries()}
    names = {p.stem.lower() for p in ds.files}
    assert len(ds) == 544 and not names & held and not names & te1 and len(ds.excluded) == 160
    with pytest.raises(DataConfigError, match="not 604"):
        UnlabeledFolder(_photos(tmp_path / "other", ["x.jpg"]), exclude_cuhk_tr1_holdout=60)
    # another collection of 604 photos: leaving out 60 of them would not leave out CUHK's hold-out
    holiday = tmp_path / "holiday"
    holiday.mkdir()
    for i in range(604):
        (holiday / f"holiday_{i:04d}.jpg").write_bytes(b"")  # the names are checked before any file is read
    with pytest.raises(DataConfigError, match="'holiday_0000' is not a CUHK name"):
        UnlabeledFolder(holiday, exclude_cuhk_tr1_holdout=60)


def test_mixed_dataset_sizes_and_flags(tmp_path):
    labeled = [{"image": np.zeros((8, 8, 3), np.uint8), "mask": np.ones((8, 8), np.uint8), "name": f"l{i}"}
               for i in range(6)]
    unlabeled = UnlabeledFolder(_photos(tmp_path / "u", ["p.jpg", "q.jpg"], size=(8, 8)))
    mixed = MixedLabeledUnlabeled(labeled, unlabeled, unlabeled_fraction=0.25)  # 6 * 0.25 / 0.75 = 2
    assert len(mixed) == 8
    assert [mixed[i]["labeled"] for i in range(8)] == [1] * 6 + [0] * 2
    assert mixed[7]["name"] == "q" and mixed[0]["name"] == "l0"
    assert len(MixedLabeledUnlabeled(labeled, unlabeled, 0.5)) == 12  # unlabeled photos repeat
    with pytest.raises(ValueError, match="unlabeled_fraction"):
        MixedLabeledUnlabeled(labeled, unlabeled, 1.0)
    tds = TransformedDataset(mixed, build_train_transform(size=(8, 8), color_jitter=None))
    batch = collate_samples([tds[0], tds[7]])
    assert batch["labeled"].tolist() == [1.0, 0.0]


def test_ema_update_matches_the_formula_and_copies_buffers():
    torch.manual_seed(0)
    student, teacher = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)), nn.Sequential(nn.Conv2d(1, 2, 1),
                                                                                            nn.BatchNorm2d(2))
    student[1].running_mean.fill_(3.0)
    t0 = [p.detach().clone() for p in teacher.parameters()]
    s0 = [p.detach().clone() for p in student.parameters()]
    ema_update(teacher, student, momentum=0.9)
    for t, a, b in zip(teacher.parameters(), t0, s0, strict=True):
        torch.testing.assert_close(t, 0.9 * a + 0.1 * b)
    assert torch.equal(teacher[1].running_mean, torch.full((2,), 3.0))
    w = teacher[0].weight.detach().clone()
    ema_update(teacher, student, momentum=0.0)  # m = 0: the teacher becomes the student
    assert torch.equal(teacher[0].weight, student[0].weight) and not torch.equal(w, student[0].weight)


def test_confident_pseudo_labels_hand_computed():
    # 4 pixels, 3 views (image, flip, rescaled), threshold 0.8
    v1 = torch.tensor([0.95, 0.95, 0.10, 0.60])
    v2 = torch.tensor([0.90, 0.40, 0.05, 0.70])
    v3 = torch.tensor([0.85, 0.95, 0.15, 0.65])
    label, keep = confident_pseudo_labels([v1, v2, v3], threshold=0.8)
    # means: 0.9, 0.7667, 0.1, 0.65 -> sides 1, 1, 0, 1; view 2 disagrees on pixel 1; confidences 0.9, -, 0.9, 0.65
    assert label.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert keep.tolist() == [1.0, 0.0, 1.0, 0.0]
    _, keep_low = confident_pseudo_labels([v1, v2, v3], threshold=0.6)
    assert keep_low.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_training_step_on_a_mixed_batch_labels_only_the_unlabeled_part():
    from dbd_lightning.losses.detection import DeepSupervisionLoss
    from dbd_lightning.models.dffnet import DFFNet
    from dbd_lightning.tasks.self_training import SelfTrainingTask

    torch.manual_seed(0)
    net = DFFNet("resnet18", channels=8)
    task = SelfTrainingTask(net, DeepSupervisionLoss(), torch.optim.Adam, threshold_init=0.7, threshold_min=0.5,
                            threshold_momentum=0.0, teacher_scales=[1.0])
    task.on_fit_start()
    assert int(task.teacher_ready) == 1
    for a, b in zip(task.teacher.parameters(), task.net.parameters(), strict=True):
        assert torch.equal(a, b)
    logged = {}
    task.log_train_terms = lambda terms, n: logged.update({k: float(v) for k, v in terms.items()})
    batch = {"image": torch.randn(4, 3, 64, 64), "mask": (torch.rand(4, 1, 64, 64) > 0.5).float(),
             "labeled": torch.tensor([1.0, 1.0, 0.0, 0.0]), "name": list("abcd")}
    loss = task.training_step(batch, 0)
    assert loss.requires_grad and np.isfinite(float(loss))
    assert {"sup", "unsup", "kept_fraction", "threshold"} <= set(logged)
    # threshold_momentum 0: tau = the teacher's mean confidence on the unlabeled part, clamped to [0.5, 0.98]
    views = task.teacher_views(batch["image"][2:])
    conf = float(torch.maximum(views[0], 1 - views[0]).mean())
    assert logged["threshold"] == pytest.approx(min(max(conf, 0.5), 0.98), abs=1e-6)
    assert logged["sup"] + task.unlabeled_weight * logged["unsup"] == pytest.approx(float(loss), rel=1e-5)


def test_domain_batchnorm_statistics_keep_each_domain_apart_hand_computed():
    """Two forward passes in train mode, one per domain: each set of running statistics holds PyTorch's
    momentum update from its own batch only (mu <- 0.9 mu + 0.1 mean, var <- 0.9 var + 0.1 unbiased var)."""
    from dbd_lightning.tasks.domain_batchnorm import DomainBatchNormStatistics

    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1)).train()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    other = DomainBatchNormStatistics(net)
    assert len(other) == 1 and torch.equal(other.mean_0, torch.zeros(1)) and torch.equal(other.var_0, torch.ones(1))
    real = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 1, 2, 2)   # mean 4, unbiased var 20 / 3
    synth = torch.tensor([0.0, 0.0, 2.0, 2.0]).view(1, 1, 2, 2)  # mean 1, unbiased var 4 / 3
    out = net(real).sum()
    with other.swapped():
        out = out + net(synth).sum()
    out.backward()  # the swaps left every tensor autograd saved untouched (a copy_ would fail here)
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, torch.tensor([0.4]))
    torch.testing.assert_close(bn.running_var, torch.tensor([0.9 + 0.1 * 20 / 3]))
    torch.testing.assert_close(other.mean_0, torch.tensor([0.1]))
    torch.testing.assert_close(other.var_0, torch.tensor([0.9 + 0.1 * 4 / 3]))
    assert int(bn.num_batches_tracked) == 1 and int(other.count_0) == 1
    # saved with its owner: a state dict round trip keeps the second domain
    restored = DomainBatchNormStatistics(nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1)))
    restored.load_state_dict(other.state_dict())
    assert torch.equal(restored.mean_0, other.mean_0) and set(other.state_dict()) == {"mean_0", "var_0", "count_0"}


def test_domain_bn_self_training_leaves_the_network_with_the_unlabeled_statistics():
    """domain_bn=true: after a mixed step the network's (and so the teacher's) BatchNorm buffers moved
    only with the unlabeled photos; the labeled batch's statistics are in task.labeled_bn."""
    from dbd_lightning.losses.detection import DeepSupervisionLoss
    from dbd_lightning.models.dffnet import DFFNet
    from dbd_lightning.tasks.self_training import SelfTrainingTask

    torch.manual_seed(0)
    batch = {"image": torch.randn(4, 3, 64, 64), "mask": (torch.rand(4, 1, 64, 64) > 0.5).float(),
             "labeled": torch.tensor([1.0, 1.0, 0.0, 0.0]), "name": list("abcd")}
    batch["image"][:2] += 5.0  # the labeled domain is far brighter: its statistics differ from the photos'

    def first_bn_mean(domain_bn: bool, only_unlabeled: bool = False):
        torch.manual_seed(1)
        net = DFFNet("resnet18", channels=8)
        task = SelfTrainingTask(net, DeepSupervisionLoss(), torch.optim.Adam, teacher_scales=[1.0],
                                domain_bn=domain_bn)
        task.log_train_terms = lambda terms, n: None
        task.on_fit_start()
        task.train()
        b = {k: (v[2:] if isinstance(v, torch.Tensor) else v[2:]) for k, v in batch.items()} if only_unlabeled else batch
        torch.manual_seed(2)
        task.training_step(b, 0).backward()  # as Lightning does after the step
        bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
        return task, bn.running_mean.clone()

    task, with_domains = first_bn_mean(True)
    _, unlabeled_only = first_bn_mean(True, only_unlabeled=True)
    _, shared = first_bn_mean(False)
    torch.testing.assert_close(with_domains, unlabeled_only)  # the labeled pass did not touch the net's buffers
    assert not torch.allclose(shared, unlabeled_only, atol=1e-3)  # without domain_bn it does
    assert float(task.labeled_bn.mean_0.abs().sum()) > 0 and "labeled_bn.mean_0" in task.state_dict()
