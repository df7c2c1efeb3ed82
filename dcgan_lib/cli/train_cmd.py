"""`python -m dcgan_lib train --dataset NAME --variant V --profile P --out DIR [--steps N]`."""
from __future__ import annotations

import torch.distributed as dist

from dcgan_lib import nets, profiles, runs, store
from dcgan_lib.cli import CommandError
from dcgan_lib.train import TrainingStopped, init_distributed
from dcgan_lib.train_config import TrainConfig


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
    p.add_argument("--compile", action="store_true", help="torch.compile both nets")
    p.add_argument("--no-fid", action="store_true",
                   help="skip the final FID/KID (where the FID Inception weights are not installed; "
                        "`fid model --checkpoint` scores the model later)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    overrides = {k: v for k, v in (("checkpoint_every", args.checkpoint_every), ("log_every", args.log_every),
                                   ("seed", args.seed)) if v is not None}
    # refuse nonsense (--steps -5, --log-every 0, ...) before the data is prepared: TrainConfig's own checks
    TrainConfig(variant=args.variant, **overrides, **({} if args.steps is None else {"steps": args.steps}))
    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be a whole number >= 1, got {args.epochs}")
    init_distributed()
    if args.compile:
        overrides["compile"] = True
    try:
        path = store.train_model(args.dataset, args.variant, args.profile, args.out, steps=args.steps,
                                 epochs=args.epochs, dedup=args.dedup, progress=not args.no_progress,
                                 quality=not args.no_fid, **overrides)
    except TrainingStopped as err:  # all ranks stop together (the trainer agrees on it)
        print(f"training stopped: {err}")
        return 3
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # a clean teardown: gloo can abort a process that exits with it alive
    print(f"checkpoint: {path}")
    print(f"samples: {runs.RunFolder(path.parent).latest_samples}")
    return 0
