"""Evaluate Karaali's pipeline: Lytro blur MAE (raw / relative), the psi ablation, DBD by threshold.

    python -m dbd_lightning.models.karaali.evaluate --bnet B.ckpt --enet E.ckpt [--lytro DIR] [--edges DIR] \
        [--dbd DIR --dbd-polarity white_in_focus] [--psi 100 0] [--variant exact wide3 cell3] [--alpha 0.5] \
        [--synthetic N] [--out results.json]

* Lytro (D'Andres et al.; paper Table I): per image the mean absolute error between
  the dense blur map and the GT disk-radius map (px), and the *relative* MAE, both
  maps divided by the largest blur level 6 px (0.169 / 6 = 0.028, the paper's pair);
  mean +- std over images.
* ``--synthetic N``: the same errors on N renders of the suite's thin-lens renderer
  (``random`` preset at 360x360, largest blur radius 6 px = B-NET's range), whose
  rendered disk-radius map is the GT.
* ``--psi``: one run per depth-edge penalty (paper: 100 -> 0.169, 0 -> 0.188).
* DBD (paper Sec. IV-C, Eq. 5): the blur map thresholded at ``tau = alpha v_max +
  (1 - alpha) v_min`` (in focus = below), scored per image against the binary GT:
  MAE, accuracy and F-beta (beta^2 = 0.3, blur = positive class, the suite's
  default convention), averaged over images, for ``--alpha`` and for the best alpha
  of a grid (the paper tunes alpha per method).
* ``--variant exact wide3 cell3``: also run the approximations (``wide3``: ``wide_stride=3``,
  ``cell3``: ``wide_stride=3, per_cell=true``); each variant after the first reports its
  agreement with the first on the Lytro and synthetic images (same edge kind, same blur level
  at the common pattern edges, mean |difference| of the dense maps).
"""

from __future__ import annotations

from ... import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .levels import BNET_RADII
from .pipeline import KaraaliPipeline, dbd_threshold

__all__ = ["lytro_errors", "lytro_scenes", "synthetic_scenes", "estimate_scenes", "radius_errors", "dbd_scores",
           "agreement", "main"]

MAX_RADIUS = BNET_RADII[-1]


def _summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std())}


def read_edges(edges_dir: str | Path | None, name: str) -> np.ndarray | None:
    """The precomputed edge map of image ``name`` in ``edges_dir`` (``<name>.*``, ``edge_<name>.*`` or, for
    ``image_<id>``, ``edge_<id>.*``: :mod:`.edge_maps`), nonzero = edge; None without ``edges_dir``."""
    if edges_dir is None:
        return None
    from .edge_maps import edge_map_names, find_edge_map, read_edge_map

    path = find_edge_map(edges_dir, name)
    if path is None:
        raise FileNotFoundError(f"no precomputed edge map for {name} in {edges_dir} "
                                f"(looked for {', '.join(n + '.*' for n in edge_map_names(name))})")
    return read_edge_map(path, image=name)


def estimate_scenes(pipe: KaraaliPipeline, scenes: list[tuple[str, np.ndarray, np.ndarray]],
                    edges_dir: str | Path | None = None) -> list[dict[str, np.ndarray]]:
    """:meth:`KaraaliPipeline.estimate` of every ``(name, image, GT radius)`` scene.

    ``edges_dir``: precomputed edge maps named like the images (default: hue Canny).
    """
    return [pipe.estimate(image, read_edges(edges_dir, name)) for name, image, _ in scenes]


def radius_errors(scenes: list[tuple[str, np.ndarray, np.ndarray]], estimates: list[dict[str, np.ndarray]]) -> dict:
    """Per-image and mean +- std raw / relative blur MAE of the ``estimates`` of ``(name, image, GT radius)`` scenes."""
    per_image = []
    for (name, _, radius), est in zip(scenes, estimates, strict=True):
        pred = est["blur_radius"]
        raw = float(np.abs(pred - radius).mean())
        per_image.append({"name": name, "mae": raw, "relative_mae": raw / MAX_RADIUS,
                          "pred_mean": float(pred.mean()), "gt_mean": float(radius.mean())})
    return {"n": len(per_image), "mae": _summary([p["mae"] for p in per_image]),
            "relative_mae": _summary([p["relative_mae"] for p in per_image]), "per_image": per_image}


def lytro_scenes(root: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, GT radius)`` of a Lytro-layout folder."""
    from ...data.benchmarks import Lytro

    ds = Lytro(root, check_count=False)
    return [(s["name"], s["image"], s["radius"]) for s in (ds[i] for i in range(len(ds)))]


def synthetic_scenes(n: int, size: int = 360, seed: int = 0,
                     preset: str = "random") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``n`` thin-lens renders with their rendered disk-radius maps as GT, blur capped at B-NET's
    largest level (6 px), deterministic in ``seed``."""
    from ...data.synthetic import SyntheticRenderer, resolve_config

    renderer = SyntheticRenderer(resolve_config(preset, size=size, max_radius_frac=MAX_RADIUS / size), seed=seed)
    scenes = []
    for i in range(n):
        sample = renderer.render(i)
        scenes.append((f"synthetic_{i:03d}", sample["image"], sample["radius"]))
    return scenes


def lytro_errors(pipe: KaraaliPipeline, root: str | Path, edges_dir: str | Path | None = None) -> dict:
    """Per-image and mean +- std raw / relative blur MAE on a Lytro-layout folder (:func:`radius_errors`)."""
    scenes = lytro_scenes(root)
    return radius_errors(scenes, estimate_scenes(pipe, scenes, edges_dir))


def agreement(ref: list[dict[str, np.ndarray]], other: list[dict[str, np.ndarray]], names: list[str]) -> dict:
    """How far the estimates ``other`` (e.g. of ``wide_stride=3``) are from ``ref`` (the exact pipeline's) of the
    same images ``names``, per image and mean +- std:

    * ``edge_kind``: fraction of the edge pixels with the same pattern / depth decision;
    * ``level``: fraction of the pixels that are pattern edges in both with the same blur level,
      ``level_mae_px`` the mean |radius difference| there;
    * ``dense_mae_px`` / ``dense_max_px``: mean / largest |difference| of the dense blur maps.
    """
    rows = []
    for name, a, b in zip(names, ref, other, strict=True):
        edges = (a["pattern_edges"] + a["depth_edges"]) > 0
        both = (a["pattern_edges"] > 0) & (b["pattern_edges"] > 0)
        dense = np.abs(a["blur_radius"] - b["blur_radius"])
        level_diff = np.abs(a["sparse"] - b["sparse"])[both]
        rows.append({"name": name, "edge_kind": float((a["depth_edges"] == b["depth_edges"])[edges].mean()),
                     "level": float((level_diff == 0).mean()) if both.any() else 1.0,
                     "level_mae_px": float(level_diff.mean()) if both.any() else 0.0,
                     "dense_mae_px": float(dense.mean()), "dense_max_px": float(dense.max())})
    keys = [k for k in rows[0] if k != "name"]
    return {"n": len(rows), **{k: _summary([r[k] for r in rows]) for k in keys}, "per_image": rows}


#: evaluation variants of the pipeline: name -> KaraaliPipeline arguments
VARIANTS: dict[str, dict] = {"exact": {}, "wide3": {"wide_stride": 3}, "cell3": {"wide_stride": 3, "per_cell": True}}


def _dbd_one(blur: np.ndarray, gt_focus: np.ndarray, alpha: float, beta2: float = 0.3) -> dict[str, float]:
    focus, _ = dbd_threshold(blur, alpha)
    gt = gt_focus.astype(bool)
    pred_blur, gt_blur = focus < 0.5, ~gt
    tp = float((pred_blur & gt_blur).sum())
    precision = tp / max(float(pred_blur.sum()), 1.0)
    recall = tp / max(float(gt_blur.sum()), 1.0)
    f = (1 + beta2) * precision * recall / max(beta2 * precision + recall, 1e-12)
    return {"mae": float(np.abs(focus - gt).mean()), "accuracy": float((focus.astype(bool) == gt).mean()),
            "fbeta": f}


def dbd_scores(pipe: KaraaliPipeline, root: str | Path, alpha: float = 0.5, polarity: str = "white_in_focus",
               image_dir: str = "image", gt_dir: str = "gt", grid: int = 21) -> dict:
    """DBD by thresholding the blur map (Eq. 5) on an image/gt folder; ``alpha`` and the best of a grid."""
    from ...data.folder import ImageMaskFolder

    ds = ImageMaskFolder(root, image_dir, gt_dir, polarity=polarity)
    blurs, gts = [], []
    for i in range(len(ds)):
        s = ds[i]
        blurs.append(pipe.estimate(s["image"])["blur_radius"])
        gts.append(s["mask"])

    def mean_scores(a: float) -> dict[str, float]:
        rows = [_dbd_one(b, g, a) for b, g in zip(blurs, gts, strict=True)]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    alphas = np.linspace(0.0, 1.0, grid)
    table = {f"{a:.2f}": mean_scores(float(a)) for a in alphas}
    best = max(table, key=lambda k: table[k]["accuracy"])
    return {"n": len(blurs), "alpha": alpha, "at_alpha": mean_scores(alpha), "best_alpha": float(best),
            "at_best_alpha": table[best], "by_alpha": table}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dbd_lightning.models.karaali.evaluate",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--bnet", required=True)
    ap.add_argument("--enet", default=None, help="E-NET checkpoint (omit: --no-enet)")
    ap.add_argument("--no-enet", action="store_true", help="treat every edge as a pattern edge")
    ap.add_argument("--lytro", default=None, help="Lytro-layout folder (image_NN.png + map_NN.mat)")
    ap.add_argument("--edges", default=None, help="precomputed Lytro edge maps (<image name>.png, nonzero = edge)")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="also score N thin-lens renders (GT = rendered disk radius, <= 6 px)")
    ap.add_argument("--synthetic-size", type=int, default=360, help="side of the renders (Lytro: 360)")
    ap.add_argument("--dbd", default=None, help="DBD folder with image/ and gt/")
    ap.add_argument("--dbd-polarity", default="white_in_focus")
    ap.add_argument("--psi", type=float, nargs="+", default=[100.0])
    ap.add_argument("--variant", nargs="+", default=["exact"], choices=sorted(VARIANTS),
                    help="exact (paper); wide3 = wide_stride=3; cell3 = wide_stride=3 + per_cell (approximations)")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.enet is None and not args.no_enet:
        ap.error("give --enet or --no-enet")
    results: dict = {"bnet": args.bnet, "enet": None if args.no_enet else args.enet, "runs": {}}
    sets = {"lytro": lytro_scenes(args.lytro) if args.lytro else [],
            "synthetic": synthetic_scenes(args.synthetic, args.synthetic_size) if args.synthetic else []}
    for psi in args.psi:
        first = None
        for variant in args.variant:
            pipe = KaraaliPipeline(bnet_ckpt=args.bnet, enet_ckpt=args.enet, use_enet=not args.no_enet, psi=psi,
                                   alpha=args.alpha, precision=args.precision, device=args.device,
                                   **VARIANTS[variant])
            key = f"psi={psi:g}" + ("" if variant == "exact" else f",{variant}")
            run: dict = {}
            estimates = {name: estimate_scenes(pipe, scenes, args.edges if name == "lytro" else None)
                         for name, scenes in sets.items() if scenes}
            for name, ests in estimates.items():
                run[name] = radius_errors(sets[name], ests)
                m, r = run[name]["mae"], run[name]["relative_mae"]
                print(f"{key} {name} ({run[name]['n']} images): MAE {m['mean']:.3f} +- {m['std']:.3f} px, "
                      f"relative {r['mean']:.4f}")
            if args.dbd:
                run["dbd"] = dbd_scores(pipe, args.dbd, args.alpha, args.dbd_polarity)
                d = run["dbd"]
                print(f"{key} DBD ({d['n']} images) alpha={args.alpha}: {d['at_alpha']}; best alpha "
                      f"{d['best_alpha']}: {d['at_best_alpha']}")
            if first is None:
                first = (variant, estimates)
            else:  # the first variant's estimates, reused
                run[f"agreement_vs_{first[0]}"] = agr = {
                    name: agreement(first[1][name], ests, [n for n, _, _ in sets[name]])
                    for name, ests in estimates.items()}
                for name, a in agr.items():
                    print(f"{key} vs {first[0]} on {name}: same edge kind {a['edge_kind']['mean']:.4f}, same level "
                          f"{a['level']['mean']:.4f}, dense map |diff| {a['dense_mae_px']['mean']:.4f} px")
            results["runs"][key] = run
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
