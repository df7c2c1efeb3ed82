"""`python -m dcgan_lib train --dataset NAME --variant V --profile P --out DIR [--steps N]`."""
from __future__ import annotations

from dcgan_lib import nets, profiles, store
from dcgan_lib.train import TrainingStopped, init_distributed


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
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    init_distributed()
    overrides = {k: v for k, v in (("checkpoint_every", args.checkpoint_every), ("log_every", args.log_every),
                                   ("seed", args.seed)) if v is not None}
    if args.compile:
        overrides["compile"] = True
    try:
        path = store.train_model(args.dataset, args.variant, args.profile, args.out, steps=args.steps,
                                 epochs=args.epochs, dedup=args.dedup, progress=not args.no_progress,
                                 **overrides)
    except TrainingStopped as err:
        print(f"training stopped: {err}")
        return 3
    print(f"checkpoint: {path}")
    print(f"samples: {path.parent / 'samples_latest.png'}")
    return 0
