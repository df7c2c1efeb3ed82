"""`python -m dcgan_lib probe {cifar10,svhn,cifar10-full} [--checkpoint PATH] [--authors] [--profile P]`.

Runs Table 1 (CIFAR-10) or Table 2 (SVHN) with the same functions as notebooks 06 and 07, and
writes the record and markdown table (figures/, or runs/smoke/figures for the smoke profile).
`--authors` runs only the rows of the authors' released nets (figures/table{1,2}_..._authors);
`cifar10-full` runs Table 1 at the paper's size (all 60,000 images, full-width features) on this
machine, with its time and peak memory (figures/table1_full_size_<d>).
"""
from __future__ import annotations

from pathlib import Path

from dcgan_lib.cli import CommandError
from dcgan_lib.config import profiles
from dcgan_lib.gan import authors, nets, runs
from dcgan_lib.measure import features, probe_data, probe_full, probe_settings, probes, svm
from dcgan_lib.records.results import stopwatch

DEFAULT_MODELS = {"cifar10": ("tiny_imagenet", "imagenet32"), "svhn": ("svhn", "svhn32")}  # paper: imagenet
FULL_SIZE_D = ("authors", "random")


def register(sub) -> None:
    p = sub.add_parser("probe", help="Tables 1-2: D's features + L2-SVM on CIFAR-10 or SVHN (Paper §5)")
    p.add_argument("task", choices=[*sorted(DEFAULT_MODELS), "cifar10-full"],
                   help="cifar10: Table 1; svhn: Table 2; cifar10-full: Table 1 at the paper's size")
    p.add_argument("--authors", action="store_true",
                   help="only the rows of the authors' released D (Table 1: ImageNet-32, Table 2: SVHN)")
    p.add_argument("--d", default="authors", choices=FULL_SIZE_D,
                   help="cifar10-full without --checkpoint: the authors' ImageNet-32 D (all layers present) or "
                        "a randomly initialised full-width imagenet32 D")
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
    p.add_argument("--solver", default="auto", choices=("auto", *svm.SOLVERS),
                   help="auto: sklearn LinearSVC for small problems, the torch solver for large ones")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-baselines", action="store_true", help="only the DCGAN row")
    p.set_defaults(func=run)


def _trained_on(path: Path) -> dict:
    """The dataset and profile a checkpoint was trained with, from the run record beside it."""
    info = runs.trained_on(path)
    return {**info, "dataset": info["dataset"] or "unknown"}


def _load(checkpoint: str | None, dataset: str, variant: str, profile: str, device, train: bool = True):
    """(D, provenance) from a checkpoint file, or from the model store (trained there when missing)."""
    if checkpoint is not None:
        path = Path(checkpoint)
        return runs.load_discriminator(path, device), _trained_on(path)
    from dcgan_lib.models import store  # the store trains missing models: import only when it is used

    _, d, info = store.get_model(dataset, variant, profile, calibrate=False, device=device,
                                 train_if_missing=train)
    return d, _trained_on(Path(info["path"]))


def run_full_size(args, profile, device) -> int:
    """Table 1 at the paper's size (all CIFAR-10 images, full-width features), timed, on this machine."""
    if args.checkpoint is not None:
        d, info = _load(args.checkpoint, "", "", profile.name, device)
        label, stem = f"D from {args.checkpoint}", "table1_full_size_checkpoint"
    elif args.d == "authors":
        d = authors.load_imagenet32_discriminator(allow_partial=True)
        info = authors.describe("authors_imagenet32")
        label = f"authors' ImageNet-32 D ({d.cfg.name}, {features.feature_dim(d.cfg):,} features)"
        stem = "table1_full_size_authors"
    else:
        _, d = nets.build("imagenet32", seed=args.seed)
        info = {"model": "imagenet32 at full width, N(0, 0.02) init, untrained", "seed": args.seed}
        label, stem = "random full-width imagenet32 D (untrained)", "table1_full_size_random"
    path = probe_full.run(d, label, probe_settings.settings_for(profile), profile=profile.name, seed=args.seed,
                          device=device, stem=stem, d_info=info)
    print(path.with_suffix(".md").read_text())
    print(f"record: {path}")
    return 0


def run_authors(args, profile, device) -> int:
    """Only the authors'-weights rows, on the same data and splits as the full table."""
    settings = probe_settings.settings_for(profile)
    with stopwatch() as elapsed:
        if args.task == "cifar10":
            pdata = probe_data.cifar10_data(settings, args.seed)
            rows, table, stem = [probes.authors_row_cifar10(pdata, settings, args.solver, device)], 1, \
                "table1_cifar10_authors"
        else:
            print(f"samples of the authors' G: {authors.write_svhn_samples(profile.name, args.seed)}")
            pdata = probe_data.svhn_data(settings, args.protocol, args.seed)
            rows, table, stem = probes.authors_rows_svhn(pdata, settings, args.solver, device, args.seed), 2, \
                "table2_svhn_authors"
    path = probes.write_authors_table(stem, table, rows, pdata, profile, seed=args.seed, wall_s=elapsed(),
                                      device=device)
    print(path.with_suffix(".md").read_text())
    print(f"record: {path}")
    return 0


def run(args) -> int:
    profile = profiles.get_profile(args.profile)
    device = profiles.get_device(args.device)
    try:
        if args.task == "cifar10-full":
            return run_full_size(args, profile, device)
        if args.authors:
            return run_authors(args, profile, device)
    except (ValueError, FileNotFoundError) as err:
        raise CommandError(str(err)) from err
    dataset, variant = DEFAULT_MODELS[args.task]
    if args.task == "cifar10":
        dataset = profile.dataset("imagenet")  # Table 1's D: ImageNet, or its stand-in
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
