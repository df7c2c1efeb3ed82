"""`python -m dcgan_lib dedup`: find near-duplicate images with the semantic hash (Paper §4.1).

Writes a groups file (each group a list of item ids; file paths for `folder:PATH`) with a
summary; the data registry's `--dedup FILE` keeps one image per group, and a combined dataset's
committed removal list (bedrooms: notebooks/inputs/bedrooms_duplicates.json) is such a file. The default method,
`robust`, also finds copies shifted or cropped by a few pixels (beyond the paper); `hash` is
the paper's key (radius 0) or keys within a Hamming radius.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from dcgan_lib.cli import CommandError
from dcgan_lib.config import profiles
from dcgan_lib.data import datasets
from dcgan_lib.dedup import dedup, dedup_scan
from dcgan_lib.records import results


def register(subparsers) -> None:
    p = subparsers.add_parser("dedup", help="find near-duplicates with the semantic hash (§4.1)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="registry name (bedrooms, tiny_imagenet, ...) or folder:PATH")
    p.add_argument("--out", required=True, type=Path, help="groups file to write (JSON)")
    p.add_argument("--method", choices=("robust", "hash"), default="robust",
                   help="robust: shifted/zoomed window keys + aligned-correlation check (default); "
                        "hash: one key per image (Paper §4.1)")
    p.add_argument("--radius", type=int, default=None,
                   help="Hamming radius in bits (default: the profile's, 6 robust / 4 hash; 0 = the paper's exact key)")
    p.add_argument("--min-ncc", type=float, default=None,
                   help="robust: lowest correlation of the aligned grey windows, -1..1 (default: the profile's, 0.9)")
    p.add_argument("--profile", default=None, help="smoke, cpu, paper or auto (default: DCGAN_PROFILE or auto)")
    p.add_argument("--split", default=None,
                   help="split to scan (default: every image before any removal: 'all' for bedrooms, else 'train')")
    p.add_argument("--batch-size", type=int, default=256, help="images decoded and hashed at a time")
    p.add_argument("--limit", type=int, default=None, help="hash only the first N images")
    p.add_argument("--seed", type=int, default=0, help="seed of the autoencoder to use (trained if missing)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the profile's)")
    p.set_defaults(func=run)


def run(args) -> int:
    profile = profiles.resolve_name(args.profile)
    cfg = dedup.config_for(profile)
    robust = args.method == "robust"
    radius = (cfg.robust_radius if robust else cfg.radius) if args.radius is None else args.radius
    if not 0 <= radius < cfg.code_dim // 8:
        raise CommandError(f"--radius must be 0..{cfg.code_dim // 8 - 1} bits, got {radius}")
    if args.min_ncc is not None and not -1 <= args.min_ncc <= 1:
        raise CommandError(f"--min-ncc is a correlation, -1..1; got {args.min_ncc}")
    if args.min_ncc is not None and not robust:
        raise CommandError("--min-ncc applies to --method robust only")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be positive")
    torch.set_num_threads(args.threads or cfg.threads)
    split = args.split or datasets.full_split(args.dataset)
    model, info = dedup.load_or_train(cfg, profile, seed=args.seed)
    print(f"hash: {'loaded' if info['loaded'] else 'trained'} {info['path']}")
    hashed = dedup_scan.hash_dataset(model, args.dataset, batch_size=args.batch_size, split=split,
                                     limit=args.limit, probe=robust)
    if not hashed.ids:
        raise CommandError(f"no images found in {args.dataset!r}")
    doc = dedup_scan.groups_document(hashed, radius, model_path=results.portable(info["path"]), robust=robust,
                                     cfg=cfg, min_ncc=args.min_ncc, split=split, limit=args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    s = doc["summary"]
    print(f"{s['images']} images, {s['groups']} duplicate groups, {s['images_removed']} images to remove "
          f"({hashed.images_per_s:.0f} images/s) -> {args.out}")
    return 0
