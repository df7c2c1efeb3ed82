"""`python -m dcgan_lib fid {real,model,curve}`: FID and KID with the standard FID Inception network, offline.

  fid real cifar10 --split train --ref-split test       real vs real (published: about 3.15 on the originals)
  fid model --dataset cifar10 --variant imagenet32      a store model (or --checkpoint PATH) vs a dataset split
  fid curve runs/models/<run>                            KID and FID of every kept epoch, plotted beside the losses
  fid samples FILE.npz --ref-dataset bedrooms            saved uint8 samples (made where no Inception was) vs real

Real-image statistics are cached in data/fid_stats. Records go to figures/ (runs/smoke/figures in
the smoke profile) or --out.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from dcgan_lib.cli import CommandError
from dcgan_lib.config import profiles
from dcgan_lib.data import archives, registry
from dcgan_lib.gan import runs
from dcgan_lib.measure import fid
from dcgan_lib.models import store, trainlog
from dcgan_lib.records import results


def register(sub) -> None:
    p = sub.add_parser("fid", help="FID and KID (standard FID Inception, offline): real vs real, a model, a curve")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{real,model,curve,samples}")
    real = kinds.add_parser("real", help="FID/KID between two real splits, e.g. CIFAR-10 train vs test")
    real.add_argument("dataset", help="a registered dataset or folder:PATH")
    real.add_argument("--split", default="train")
    real.add_argument("--ref-split", default="test", help="the split to compare against (default test)")
    real.add_argument("--n", type=int, default=None, help="images of --split, evenly spaced (default: all)")
    real.add_argument("--ref-n", type=int, default=None, help="images of --ref-split (default: all)")
    real.add_argument("--size", type=int, default=32, help="decode size in px before the 299 px resize "
                      "(default 32: CIFAR-10 and SVHN at their own size)")
    model = kinds.add_parser("model", help="FID/KID of a trained G's samples against a dataset split")
    model.add_argument("--checkpoint", default=None, help="checkpoint.pt with config/G (default: the store's model)")
    model.add_argument("--dataset", default="cifar10", help="the store model's training set (default cifar10)")
    model.add_argument("--variant", default="imagenet32", help="the store model's variant (default imagenet32)")
    model.add_argument("--ref-dataset", default=None, help="real images to compare with (default: the "
                       "model's training set)")
    model.add_argument("--ref-split", default=None, help="default: test where the set has one, else train")
    model.add_argument("--n", type=int, default=10_000, help="G samples (default 10,000, as StudioGAN)")
    model.add_argument("--ref-n", type=int, default=None, help="real images (default: all of the split)")
    model.add_argument("--record", default=None, help="the record's name (default: fid_model_<dataset>_<variant>_"
                       "<profile>; name it when comparing two checkpoints, e.g. two recipes)")
    curve = kinds.add_parser("curve", help="KID/FID of each kept epoch of a run folder: quality.csv + figure")
    curve.add_argument("folder", help="a run folder with snapshots/G_epoch*.pt (runs/models/...)")
    curve.add_argument("--n", type=int, default=None, help="G samples per snapshot (default: the profile's)")
    curve.add_argument("--points", type=int, default=None, help="snapshots to measure (default: the profile's)")
    curve.add_argument("--all", action="store_true", help="measure every kept epoch")
    saved = kinds.add_parser("samples", help="FID/KID of saved uint8 samples (.npz holding 'images', N x H x W x 3)")
    saved.add_argument("file", help="an .npz of samples, e.g. from `bench gpu-check --samples-dir`")
    saved.add_argument("--ref-dataset", required=True, help="real images to compare with")
    saved.add_argument("--ref-split", default="train")
    saved.add_argument("--ref-n", type=int, default=None, help="real images, evenly spaced (default: all)")
    saved.add_argument("--made-by", default=None, help="the record of the run that made the samples (its "
                       "name, commit and device are copied into this record)")
    for q in (real, model, curve, saved):
        q.add_argument("--profile", default="auto", choices=list(profiles.NAMES),
                       help="where records go (smoke: runs/smoke/figures) and the store model's profile")
        q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        q.add_argument("--batch", type=int, default=50, help="Inception batch size (pytorch-fid: 50)")
        q.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
        q.add_argument("--seed", type=int, default=0, help="seed of z and of the KID subsets")
        q.add_argument("--kid-subsets", type=int, default=100)
        q.add_argument("--kid-subset-size", type=int, default=1000)
        q.add_argument("--out", default=None, help="folder for the record (default: the profile's figures folder)")
        q.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.batch < 1 or args.kid_subsets < 1 or args.kid_subset_size < 2:
        raise ValueError("--batch and --kid-subsets must be >= 1, --kid-subset-size >= 2")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        fid.torchscript_path()
    except FileNotFoundError as err:
        raise CommandError(str(err)) from err
    return {"real": run_real, "model": run_model, "curve": run_curve, "samples": run_samples}[args.kind](args)


def _real(dataset: str, split: str, size: int, n: int | None, args, device) -> fid.Stats:
    try:
        return fid.real_stats(dataset, split, size, n, args.batch, device, not args.no_progress)
    except registry.DatasetMissing as err:
        raise CommandError(str(err)) from err


def _print(path: Path, metrics: dict) -> None:
    print(f"FID {metrics['fid']:.3f}  KID {metrics['kid']:.5f} +- {metrics['kid_std']:.5f} "
          f"({metrics['n']:,} vs {metrics['n_real']:,} images; KID subsets of {metrics['kid_subset_size']:,})")
    print(f"record: {path}")


def run_real(args) -> int:
    profile = profiles.resolve_name(args.profile)
    device = profiles.get_device(args.device)
    with results.stopwatch() as wall:
        a = _real(args.dataset, args.split, args.size, args.n, args, device)
        b = _real(args.dataset, args.ref_split, args.size, args.ref_n, args, device)
        metrics = fid.compare(a, b, args.kid_subsets, args.kid_subset_size, args.seed)
    paper = {}
    if args.dataset == "cifar10" and {args.split, args.ref_split} == {"train", "test"}:
        paper = fid.REFERENCES["cifar10_train_vs_test"]
    notes = sorted({s.info["note"] for s in (a, b) if "note" in s.info})
    safe = args.dataset.replace("folder:", "folder-").replace("/", "_").replace(":", "_").strip("_")
    path = results.write_record(
        f"fid_real_{safe}_{args.split}_vs_{args.ref_split}",
        name=f"FID {args.dataset} {args.split} vs {args.ref_split}",
        profile=profile, metrics=metrics, paper=paper, data={"images": a.info, "reference": b.info, "notes": notes},
        seed=args.seed, wall_s=wall(), device=device, out_dir=args.out, **fid.network_info())
    _print(path, metrics)
    for note in notes:
        print(f"note: {note}")
    return 0


def _generator(args, profile: str, device):
    """(calibrated G in eval mode, where it came from) from --checkpoint or the model store."""
    if args.checkpoint:
        path = Path(args.checkpoint)
        if not path.exists():
            raise CommandError(f"no checkpoint at {path}")
        g, _ = runs.load_generator(path, device)  # a full checkpoint or a G-only export
        return store.calibrated(g, profile), runs.trained_on(path)
    try:
        g, _, info = store.get_model(args.dataset, args.variant, profile, device=device, train_if_missing=False)
    except FileNotFoundError as err:
        raise CommandError(str(err)) from err
    model = {"checkpoint": info["path"], "dataset": args.dataset, "profile": profile,
             "commit": info["run"].get("commit")}
    training = trainlog.summary(Path(info["path"]).parent, missing_ok=True)  # epochs, width, wall time, data
    if training:
        model["training"] = training
    return g, model


def run_model(args) -> int:
    profile = profiles.resolve_name(args.profile)
    device = profiles.get_device(args.device)
    with results.stopwatch() as wall:
        g, model = _generator(args, profile, device)
        ref_dataset = args.ref_dataset or model["dataset"] or args.dataset
        ref_split = args.ref_split or ("test" if "test" in registry.get_spec(ref_dataset).splits else "train")
        real = _real(ref_dataset, ref_split, g.cfg.image_size, args.ref_n, args, device)
        metrics = fid.evaluate_generator(g, real, args.n, args.seed, args.batch, device, not args.no_progress,
                                         args.kid_subsets, args.kid_subset_size)
    paper = {}
    if ref_dataset == "cifar10" and ref_split == "test" and g.cfg.image_size == 32:
        paper = fid.REFERENCES["studiogan_dcgan_cifar10"]
    variant = g.cfg.name
    safe = str(model["dataset"] or "checkpoint").replace("folder:", "folder-").replace("/", "_").replace(":", "_")
    notes = [real.info["note"]] if "note" in real.info else []
    path = results.write_record(
        args.record or f"fid_model_{safe.strip('_')}_{variant}_{model.get('profile') or profile}",
        name=f"FID of {variant} G ({model['dataset']}) vs "
        f"{ref_dataset} {ref_split}", profile=profile, metrics=metrics, paper=paper,
        data={"reference": real.info, "notes": notes}, seed=args.seed, wall_s=wall(), device=device,
        out_dir=args.out, model=model, **fid.network_info())
    _print(path, metrics)
    for note in notes:
        print(f"note: {note}")
    return 0


def run_curve(args) -> int:
    folder = Path(args.folder)
    try:
        rows = trainlog.quality_curve(folder, args.n, None if args.all else (args.points or "budget"),
                                      profiles.get_device(args.device), not args.no_progress, args.seed)
        record = runs.read_record(folder)
    except FileNotFoundError as err:
        raise CommandError(str(err)) from err
    fig = trainlog.training_figure(runs.read_log(folder), trainlog.steps_per_epoch(record),
                                   title=f"{record['data']['dataset']} {record['train_config']['variant']}",
                                   quality=rows)
    out = Path(args.out) if args.out else folder
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "training_quality.png", dpi=120)
    plt.close(fig)
    for r in rows:
        print(f"epoch {int(r['epoch']):>3}  KID {r['kid']:.5f} +- {r['kid_std']:.5f}  FID {r['fid']:.2f}")
    run = runs.RunFolder(folder)
    print(f"curve: {run.quality}, record: {run.quality_record()}, figure: {out / 'training_quality.png'}")
    return 0


def run_samples(args) -> int:
    path = Path(args.file)
    if not path.exists():
        raise CommandError(f"no samples file at {path}")
    with np.load(path) as f:
        if "images" not in f:
            raise CommandError(f"{path} holds no 'images' array (uint8, N x H x W x 3)")
        images = f["images"]
    made_by = {}
    if args.made_by:
        rec = results.read_record(args.made_by)
        made_by = {"record": args.made_by, **{k: rec.get(k) for k in ("name", "commit", "device", "profile")}}
    profile = profiles.resolve_name(args.profile)
    device = profiles.get_device(args.device)
    with results.stopwatch() as wall:
        real = _real(args.ref_dataset, args.ref_split, images.shape[1], args.ref_n, args, device)
        fake = fid.Stats.of(fid.features(images, args.batch, device, not args.no_progress, desc="samples"))
        metrics = fid.compare(fake, real, args.kid_subsets, min(args.kid_subset_size, len(images), len(real.feats)),
                              args.seed)
    notes = [real.info["note"]] if "note" in real.info else []
    out = results.write_record(
        f"fid_samples_{path.stem}", name=f"FID of saved samples {path.name} vs {args.ref_dataset} {args.ref_split}",
        profile=profile, metrics=metrics, data={"reference": real.info, "notes": notes}, seed=args.seed,
        wall_s=wall(), device=device, out_dir=args.out,
        samples={"file": str(path), "sha256": archives.sha256_of(path), "n": len(images), "made_by": made_by},
        **fid.network_info())
    _print(out, metrics)
    return 0
