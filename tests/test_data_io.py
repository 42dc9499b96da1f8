import numpy as np
import pytest
import torch
from PIL import Image

from dbd_lightning.data.datamodule import DBDDataModule
from dbd_lightning.data.folder import DatasetLayoutError, ImageMaskFolder
from dbd_lightning.data.io import ImageReadError, read_mask, read_rgb
from dbd_lightning.data.samples import TransformedDataset, collate_samples
from dbd_lightning.data.transforms import build_eval_transform, build_train_transform


def test_read_rgb_any_mode(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((5, 7), 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert np.array_equal(read_rgb(tmp_path / "rgb.png"), rgb)
    assert np.array_equal(read_rgb(tmp_path / "rgba.png"), rgb)  # alpha dropped
    gray = read_rgb(tmp_path / "gray.png")
    assert gray.shape == (5, 7, 3) and np.array_equal(gray[..., 2], rgb[..., 0])
    assert np.array_equal(read_rgb(tmp_path / "g16.png")[..., 0], rgb[..., 0])  # 16-bit scaled to 8
    assert read_rgb(tmp_path / "pal.png").shape == (5, 7, 3)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((4, 6, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_rgb(tmp_path / "r.jpg").shape == (6, 4, 3)


def test_read_mask_binarizes_at_half_range_and_converts_polarity(tmp_path):
    values = np.array([[0, 6, 127, 128, 249, 255]], np.uint8)  # anti-aliased edges
    Image.fromarray(values).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 0, 0, 1, 1, 1]]
    assert read_mask(tmp_path / "m.png", "white_blurred").tolist() == [[1, 1, 1, 0, 0, 0]]
    Image.fromarray(values.astype(np.uint16) * 257).save(tmp_path / "m16.png")
    assert read_mask(tmp_path / "m16.png").tolist() == [[0, 0, 0, 1, 1, 1]]
    with pytest.raises(ValueError, match="unknown mask polarity"):
        read_mask(tmp_path / "m.png", "white")


def test_corrupt_file_names_the_path(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        read_rgb(bad)


def test_an_image_beyond_pils_pixel_limit_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 900 pixels > 2 x 100: PIL's DecompressionBombError
    with pytest.raises(ImageReadError, match="huge.png is too large to read"):
        read_rgb(path)


def make_folder(root, n=3, size=(12, 16), gt_size=None):
    (root / "image").mkdir(parents=True)
    (root / "gt").mkdir()
    for i in range(n):
        Image.fromarray(np.full((*size, 3), 40 * i, np.uint8)).save(root / "image" / f"{i}.jpg")
        m = np.zeros(gt_size or size, np.uint8)
        m[:, : m.shape[1] // 2] = 255
        Image.fromarray(m).save(root / "gt" / f"{i}.png")
    return root


def test_folder_dataset_pairs_by_stem(tmp_path):
    ds = ImageMaskFolder(make_folder(tmp_path / "set"))
    assert len(ds) == 3
    s = ds[1]
    assert s["name"] == "1" and s["image"].shape == (12, 16, 3)
    assert s["mask"][:, :8].all() and not s["mask"][:, 8:].any()


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="DBD_DATA_ROOT"):
        ImageMaskFolder(tmp_path / "missing")
    root = make_folder(tmp_path / "set")
    (root / "gt" / "2.png").unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(root / "gt" / "extra.png")
    with pytest.raises(DatasetLayoutError) as err:
        ImageMaskFolder(root)
    assert "1 image(s) without GT" in str(err.value) and "['2']" in str(err.value)
    assert "1 GT file(s) without image" in str(err.value) and "['extra']" in str(err.value)
    assert len(ImageMaskFolder(root, strict=False)) == 2
    bad = make_folder(tmp_path / "sizes", gt_size=(10, 16))
    with pytest.raises(DatasetLayoutError, match="size mismatch"):
        ImageMaskFolder(bad)[0]


def test_train_transform_keeps_image_and_mask_aligned():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = 255
    mask = np.zeros((40, 60), np.uint8)
    mask[:, :30] = 1
    tf = build_train_transform(size=(20, 20), flip="horizontal", flip_p=1.0, color_jitter=None)
    out = tf(image=image, mask=mask)
    assert out["image"].shape == (3, 20, 20) and tuple(out["mask"].shape) == (20, 20)
    assert set(np.unique(out["mask"].numpy())) <= {0, 1}  # nearest resize keeps masks binary
    bright = out["image"].mean(0) > 0
    assert torch.equal(bright, out["mask"].bool())  # flipped together
    assert out["mask"][:, -1].all() and not out["mask"][:, 0].any()
    with pytest.raises(ValueError, match="flip must be one of"):
        build_train_transform(flip="sideways")


def test_transformed_samples_keep_full_resolution_gt_and_collate():
    class Raw(torch.utils.data.Dataset):
        sizes = [(30, 40), (50, 20)]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            h, w = self.sizes[i]
            return {"image": np.zeros((h, w, 3), np.uint8), "mask": np.ones((h, w), np.uint8), "name": f"s{i}",
                    "depth": np.full((h, w), 0.5, np.float32)}

    ds = TransformedDataset(Raw(), build_eval_transform(size=(16, 16)), keep_full_gt=True)
    batch = collate_samples([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["mask"].shape == (2, 1, 16, 16)
    assert batch["depth"].shape == (2, 1, 16, 16)
    assert [tuple(g.shape) for g in batch["gt_full"]] == [(1, 30, 40), (1, 50, 20)]
    assert batch["orig_size"].tolist() == [[30, 40], [50, 20]]
    assert batch["name"] == ["s0", "s1"]


def test_datamodule_concatenates_train_sets_and_names_eval_sets(tmp_path):
    a, b = ImageMaskFolder(make_folder(tmp_path / "a")), ImageMaskFolder(make_folder(tmp_path / "b", n=2))
    dm = DBDDataModule(train={"a": a, "b": b}, val={"a": a}, test={"a": a, "b": b},
                       train_transform=build_train_transform(size=(8, 8)),
                       eval_transform=build_eval_transform(size=(8, 8)), batch_size=2)
    assert len(dm.train_dataloader().dataset) == 5
    assert dm.test_names == ["a", "b"] and len(dm.test_dataloader()) == 2
    with pytest.raises(ValueError, match="no train_transform"):
        DBDDataModule(train={"a": a})
