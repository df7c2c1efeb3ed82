"""`python -m dcgan_lib train --dataset NAME --variant V [--profile P] [--out DIR] [recipe flags]`.

The flags pytorch/examples' dcgan users know are here (--batch-size, --lr, --beta1, --width, --image-size,
--device); each value is checked by TrainConfig before any data is prepared. Without them the profile's
plan (store.plan) sets the run. The default --out is the model store's folder, which the notebooks read:
train a changed recipe into its own --out, or the notebooks refuse the model until it is moved aside.
"""
from __future__ import annotations

import torch.distributed as dist

from dcgan_lib.cli import CommandError
from dcgan_lib.config import profiles
from dcgan_lib.gan import nets, runs
from dcgan_lib.gan.train import TrainingStopped, init_distributed
from dcgan_lib.gan.train_config import CLI_FLAGS, COMPILE_MODES, TrainConfig
from dcgan_lib.models import store

NUMERICS = {"auto": None, "bf16": True, "fp32": False}  # --numerics -> TrainConfig.amp


def register(sub) -> None:
    p = sub.add_parser("train", help="train a DCGAN (resumes from DIR/checkpoint.pt when present)")
    p.add_argument("--dataset", required=True, help="a registered dataset or folder:PATH")
    p.add_argument("--variant", required=True, choices=list(nets.VARIANTS))
    p.add_argument("--profile", default="auto", choices=list(profiles.NAMES))
    p.add_argument("--out", default=None, help="run folder (default runs/models/<dataset>_<variant>_<profile>)")
    p.add_argument("--steps", type=int, default=None, help="total steps (default: the profile's epochs)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--log-every", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dedup", default=None, help="JSON of duplicate groups from `dedup`: keep one per group")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default: the profile's; paper 128)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (Paper §4: 0.0002)")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (Paper §4: 0.5)")
    p.add_argument("--width", type=float, default=None,
                   help="multiplier on every hidden width of G and D (1: the paper's nets; pytorch/examples' "
                        "--ngf 64 --ndf 64 is 0.5 for lsun64); default: the profile's")
    p.add_argument("--kernel", type=int, default=None, choices=nets.KERNELS,
                   help="conv kernel side of lsun64 and faces64 (default: the profile's, else the variant's: "
                        "lsun64 4, faces64 5 as the authors' faces code)")
    p.add_argument("--image-size", type=int, default=None,
                   help="folder:PATH datasets only: train at this side in px (lsun64 and faces64: 32, 64 or 128)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--diffaug", default=None, help="DiffAugment policy, e.g. color,translation (default: off)")
    p.add_argument("--numerics", default="auto", choices=tuple(NUMERICS),
                   help="auto: bf16 autocast on CUDA GPUs with bf16 tensor cores, fp32 elsewhere (CPUs too); bf16: "
                        "also on CPUs with AMX (measured: figures/bf16_kid_bedrooms.json); fp32: everywhere")
    p.add_argument("--compile", action="store_true", help="torch.compile both nets")
    p.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                   help="torch.compile mode (implies --compile); reduce-overhead: CUDA graphs")
    p.add_argument("--no-fid", action="store_true",
                   help="skip the final FID/KID (where the FID Inception weights are not installed; "
                        "`fid model --checkpoint` scores the model later)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def overrides_of(args) -> dict:
    """The TrainConfig fields the command line sets (flags left out keep the profile's plan)."""
    fields = [f for f in CLI_FLAGS if f not in ("steps", "compile_mode")]  # steps: store.plan's own argument
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    if args.numerics != "auto":
        overrides["amp"] = NUMERICS[args.numerics]
    if args.compile or args.compile_mode:
        overrides.update(compile=True, compile_mode=args.compile_mode or "default")
    return overrides


def run(args) -> int:
    overrides = overrides_of(args)
    if args.image_size is not None and not args.dataset.startswith("folder:"):
        raise CommandError(f"--image-size applies to folder:PATH datasets; {args.dataset} trains at the "
                           f"{args.variant} variant's size")
    # refuse nonsense (--steps -5, --lr 0, --image-size 48 ...) before the data is prepared: TrainConfig's checks
    cfg = TrainConfig(variant=args.variant, **overrides, **({} if args.steps is None else {"steps": args.steps}))
    try:
        cfg.net_config()
    except ValueError as err:  # a size or kernel the variant's nets cannot be built with
        given = [f"--{flag.replace('_', '-')} {value}" for flag, value in
                 (("image_size", args.image_size), ("kernel", args.kernel)) if value is not None]
        raise CommandError(f"{' '.join(given) or args.variant}: {err}") from None
    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be a whole number >= 1, got {args.epochs}")
    device = profiles.get_device(args.device)  # a device this machine lacks: one clear error, before the data
    init_distributed()
    try:
        path = store.train_model(args.dataset, args.variant, args.profile, args.out, steps=args.steps,
                                 epochs=args.epochs, dedup=args.dedup, progress=not args.no_progress,
                                 quality=not args.no_fid, device=device, **overrides)
    except TrainingStopped as err:  # all ranks stop together (the trainer agrees on it)
        print(f"training stopped: {err}")
        return 3
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # a clean teardown: gloo can abort a process that exits with it alive
    print(f"checkpoint: {path}")
    print(f"samples: {runs.RunFolder(path.parent).latest_samples}")
    return 0
