"""`python -m dcgan_lib probe {cifar10,svhn} [--checkpoint PATH] [--protocol offline|paper] [--profile P]`.

Runs Table 1 (CIFAR-10) or Table 2 (SVHN) with the same functions as notebooks 06 and 07, and
writes the record and markdown table (figures/, or runs/smoke/figures for the smoke profile).
"""
from __future__ import annotations

import json
from pathlib import Path

from dcgan_lib import features, probes, profiles
from dcgan_lib.cli import CommandError

DEFAULT_MODELS = {"cifar10": ("tiny_imagenet", "imagenet32"), "svhn": ("svhn", "svhn32")}  # paper: imagenet


def register(sub) -> None:
    p = sub.add_parser("probe", help="Tables 1-2: D's features + L2-SVM on CIFAR-10 or SVHN (Paper §5)")
    p.add_argument("task", choices=sorted(DEFAULT_MODELS), help="cifar10: Table 1; svhn: Table 2")
    p.add_argument("--checkpoint", default=None,
                   help="D to probe (checkpoint.pt with config/G/D); default: the model store's "
                        "imagenet32 on tiny_imagenet (imagenet in the paper profile) for cifar10, "
                        "svhn32 on svhn for svhn, at this profile")
    p.add_argument("--cifar-checkpoint", default=None,
                   help="Table 1 extra row: a D trained on CIFAR-10 itself (default: the store's, if trained)")
    p.add_argument("--protocol", default="auto", choices=("auto", "offline", "paper"),
                   help="SVHN: paper (official download, 10k validation off train) or offline (mirror); "
                        "auto picks by the data on disk")
    p.add_argument("--profile", default="auto", choices=list(profiles.NAMES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--solver", default="auto", choices=("auto", *probes.SOLVERS),
                   help="auto: sklearn LinearSVC for small problems, the torch solver for large ones")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-baselines", action="store_true", help="only the DCGAN row")
    p.set_defaults(func=run)


def _trained_on(path: Path) -> dict:
    """The dataset and profile a checkpoint was trained with, from the run record beside it."""
    record = path.parent / "run.json"
    run = json.loads(record.read_text()) if record.exists() else {}
    return {"checkpoint": str(path), "dataset": run.get("data", {}).get("dataset", "unknown"),
            "profile": run.get("profile"), "commit": run.get("commit")}


def _load(checkpoint: str | None, dataset: str, variant: str, profile: str, device, train: bool = True):
    """(D, provenance) from a checkpoint file, or from the model store (trained there when missing)."""
    if checkpoint is not None:
        path = Path(checkpoint)
        return features.load_discriminator(path, device), _trained_on(path)
    from dcgan_lib import store  # the store trains missing models: import only when it is used

    _, d, info = store.get_model(dataset, variant, profile, calibrate=False, device=device,
                                 train_if_missing=train)
    return d, _trained_on(Path(info["path"]))


def run(args) -> int:
    profile = profiles.get_profile(args.profile)
    device = profiles.get_device(args.device)
    dataset, variant = DEFAULT_MODELS[args.task]
    if args.task == "cifar10":
        dataset = probes.table1_d_dataset(profile.name)
    try:
        d, d_info = _load(args.checkpoint, dataset, variant, profile.name, device)
    except (ValueError, FileNotFoundError) as err:
        raise CommandError(str(err)) from err
    if args.task == "cifar10":
        if d_info["dataset"] == "cifar10":
            print("warning: this D was trained on CIFAR-10; the paper's Table 1 D never saw it")
        cifar_d = None
        if not args.no_baselines:
            try:
                cifar_d, _ = _load(args.cifar_checkpoint, "cifar10", variant, profile.name, device, train=False)
            except FileNotFoundError as err:
                print(f"skipping the CIFAR-10-trained D row: {err}")
        path = probes.run_table1(d, profile, seed=args.seed, solver=args.solver, device=device, cifar_d=cifar_d,
                                 baselines=not args.no_baselines, d_source=d_info["dataset"], d_info=d_info)
    else:
        path = probes.run_table2(d, profile, protocol=args.protocol, seed=args.seed, solver=args.solver,
                                 device=device, baselines=not args.no_baselines, d_info=d_info)
    print(path.with_suffix(".md").read_text())
    print(f"record: {path}")
    return 0
