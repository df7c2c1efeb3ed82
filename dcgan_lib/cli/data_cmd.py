"""`python -m dcgan_lib data {list,fetch,verify,prepare} NAME`."""
from __future__ import annotations

import sys

from dcgan_lib.data import archives, data, datasets, registry


def register(sub) -> None:
    p = sub.add_parser("data", help="list, fetch, verify and prepare datasets")
    p.add_argument("action", choices=("list", "fetch", "verify", "prepare"))
    p.add_argument("name", nargs="?", help=f"one of {', '.join(registry.DATASETS)}, folder:PATH, or 'all'")
    p.add_argument("--size", type=int, default=64, help="prepare: side in pixels (default 64)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="prepare: an evenly spaced subset")
    p.add_argument("--official", action="store_true", help="fetch: download the official release")
    p.set_defaults(func=run)


def _names(name: str | None) -> list[str]:
    if name in (None, "all"):  # LSUN (43 GB) and ImageNet are fetched only when named
        return [n for n in registry.DATASETS if n not in ("lsun_bedroom", "imagenet")]
    registry.get_spec(name)  # raises with the valid names
    return [name]


def run(args) -> int:
    if args.action == "list":
        for row in datasets.status():
            print(f"{row['dataset']:18s} {row['where']:22s} {row['about']}")
        return 0
    if args.name is None:
        raise ValueError(f"`data {args.action}` needs a dataset name ({', '.join(registry.DATASETS)}, folder:PATH)")
    failed = 0
    for name in _names(args.name):
        try:
            if args.action == "fetch":
                if args.name == "all" and not args.official:
                    try:
                        src = datasets.find_source(name)  # already here, or copied from the mirror
                        print(f"{name}: {src.kind} {src.path}")
                        continue
                    except registry.DatasetMissing:
                        pass
                src = datasets.fetch(name, official=args.official)
                print(f"{name}: {src.kind} {src.path}")
            elif args.action == "verify":
                src = datasets.find_source(name, auto_fetch=False)
                for part in src.parts or (src,):  # a combined dataset: each of its parts' archives
                    if part.sha256:
                        archives.verify(part.path, part.sha256)
                print(f"{name}: {src.kind} {src.path} ok")
            else:
                images = data.prepare(name, args.size, args.split, args.limit)
                print(f"{name}/{args.split}: {len(images)} images at {args.size}px, {images.info['bad']} bad "
                      f"file(s) skipped" + "".join(f"\n  bad: {b['id']} ({b['error']})"
                                                   for b in images.info.get("bad_files", [])))
        except registry.DatasetMissing as err:
            if args.name != "all":
                raise
            print(f"{name}: skipped ({err})")
        except archives.ChecksumMismatch as err:  # reported, never used; the other datasets still run
            failed += 1
            print(f"error: {name}: {err}", file=sys.stderr)
    return 1 if failed else 0
