"""`python -m dcgan_lib data {list,fetch,verify,prepare} NAME`."""
from __future__ import annotations

from dcgan_lib import data


def register(sub) -> None:
    p = sub.add_parser("data", help="list, fetch, verify and prepare datasets")
    p.add_argument("action", choices=("list", "fetch", "verify", "prepare"))
    p.add_argument("name", nargs="?", help=f"one of {', '.join(data.DATASETS)}, folder:PATH, or 'all'")
    p.add_argument("--size", type=int, default=64, help="prepare: side in pixels (default 64)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="prepare: an evenly spaced subset")
    p.add_argument("--official", action="store_true", help="fetch: download the official release")
    p.set_defaults(func=run)


def _names(name: str | None) -> list[str]:
    if name in (None, "all"):
        return list(data.DATASETS)
    data.get_spec(name)  # raises with the valid names
    return [name]


def run(args) -> int:
    if args.action == "list":
        mirror = data.mirror_root()
        for name, spec in data.DATASETS.items():
            try:
                where = data.find_source(name, auto_fetch=False).kind
            except data.DatasetMissing:
                in_mirror = bool(mirror and spec.archive and (mirror / spec.archive).exists())
                where = "in mirror, not fetched" if in_mirror else "missing"
            print(f"{name:14s} {where:22s} {spec.about}")
        return 0
    if args.name is None:
        raise ValueError(f"`data {args.action}` needs a dataset name ({', '.join(data.DATASETS)}, folder:PATH)")
    failed = 0
    for name in _names(args.name):
        try:
            if args.action == "fetch":
                src = data.fetch(name, official=args.official)
                print(f"{name}: {src.kind} {src.path}")
            elif args.action == "verify":
                src = data.find_source(name, auto_fetch=False)
                if src.sha256:
                    data.verify(src.path, src.sha256)
                print(f"{name}: {src.kind} {src.path} ok")
            else:
                images = data.prepare(name, args.size, args.split, args.limit)
                print(f"{name}/{args.split}: {len(images)} images at {args.size}px, {images.info['bad']} bad "
                      f"file(s) skipped" + "".join(f"\n  bad: {b['id']} ({b['error']})"
                                                   for b in images.info.get("bad_files", [])))
        except data.DatasetMissing as err:
            if args.name != "all":
                raise
            print(f"{name}: skipped ({err})")
        except data.ChecksumMismatch:
            failed += 1
            raise
    return 1 if failed else 0
