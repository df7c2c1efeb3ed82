"""De-duplication with a semantic hash (Paper §4.1): a 3072-128-3072 denoising autoencoder.

The paper trains a de-noising, dropout-regularised ReLU autoencoder on 32x32 centre crops and
binarises its 128-d code (each ReLU active or not) into a key; images with the same key are
duplicates, found in one linear pass. Exact keys miss many lightly changed copies, so this
module also groups keys within a Hamming radius r by multi-index hashing (split the key into
r+1 chunks: by pigeonhole a match within r shares one chunk exactly), which stays near-linear.
The planted-duplicate benchmark measures precision and recall against two baselines.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from PIL import Image, ImageEnhance
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch import nn
from tqdm.auto import tqdm

from dcgan_lib import results

FORMAT = "dcgan_lib.dedup/1"  # the groups-file format written by `python -m dcgan_lib dedup`
KINDS = ("exact", "jpeg", "brightness", "resize", "crop", "combo")  # planted changes
TARGET_KINDS = ("jpeg", "brightness", "resize")  # the light changes the default radius is tuned for


@dataclass(frozen=True)
class DedupConfig:
    """Autoencoder, hash and benchmark settings of one profile (Paper §4.1)."""

    image_size: int = 32  # Paper §4.1: 32x32 down-sampled centre crops
    code_dim: int = 128  # 3072-128-3072
    noise_std: float = 0.2  # de-noising: Gaussian noise added to the (standardised) input
    mask_p: float = 0.1  # de-noising: fraction of input values zeroed
    dropout: float = 0.2  # dropout on the code
    standardize: bool = True  # zero mean, unit variance per image (not in the paper: makes the hash ignore lighting)
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 256
    train_sets: tuple[str, ...] = ("cifar10", "tiny_imagenet")
    train_limit: int | None = 40_000  # images drawn from each training set (None: all)
    train_pool: int | None = None  # rows prepared per training set (None: all; smoke keeps it small)
    radius: int = 4  # default Hamming radius (0: the paper's exact key)
    ahash_radius: int = 4  # radius of the average-hash baseline's second row
    loose_radius: int = 8  # a looser semantic-hash row, to show where false collisions begin
    bench_sets: tuple[tuple[str, str, int, int], ...] = (("cifar10", "test", 2, 5000),
                                                          ("tiny_imagenet", "train", 14, 5000))
    bench_copies: int = 1000  # planted copies per kind
    scan_sets: tuple[str, ...] = ("bedrooms", "tiny_imagenet")
    scan_limit: int | None = None
    threads: int = 1  # torch threads: the 2-core machines this runs on are shared, and 2 threads contend


PRESETS: dict[str, DedupConfig] = {
    "smoke": DedupConfig(epochs=2, train_sets=("cifar10",), train_limit=512, train_pool=512,
                         bench_sets=(("cifar10", "test", 1, 300),), bench_copies=60,
                         scan_sets=("bedrooms",), scan_limit=512),
    "cpu": DedupConfig(),
    "paper": DedupConfig(epochs=20, train_limit=None, threads=8,
                         bench_sets=(("cifar10", "test", 1, 10_000), ("tiny_imagenet", "train", 7, 10_000)),
                         bench_copies=2000),
}


def config_for(profile: str) -> DedupConfig:
    """The de-duplication settings of a profile name (smoke, cpu or paper). Paper §4.1."""
    if profile not in PRESETS:
        raise ValueError(f"no dedup preset for profile {profile!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[profile]


# ---------------------------------------------------------------- the autoencoder and its hash


class HashAutoencoder(nn.Module):
    """3072-128-3072 ReLU autoencoder whose binarised code is the semantic hash (Paper §4.1)."""

    def __init__(self, cfg: DedupConfig):
        super().__init__()
        self.cfg = cfg
        dim = 3 * cfg.image_size**2
        self.encoder = nn.Linear(dim, cfg.code_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.decoder = nn.Linear(cfg.code_dim, dim)
        # bit_order[j] = the code unit stored at key bit j (balanced units spread over the key's bytes)
        self.register_buffer("bit_order", torch.arange(cfg.code_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3072) pixels in [-1, 1] -> (N, 128) ReLU code."""
        return torch.relu(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.dropout(self.encode(x)))  # (N, 3072)


def as_input(images: np.ndarray, standardize: bool = False) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, H*W*3) in [-1, 1] (Paper §4), optionally standardised per image."""
    x = torch.from_numpy(np.ascontiguousarray(images)).reshape(len(images), -1)
    x = x.float().div_(127.5).sub_(1.0)
    if standardize:  # brightness and contrast changes of a copy cancel out
        x = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 0.05)
    return x


def corrupt(x: torch.Tensor, cfg: DedupConfig, generator: torch.Generator) -> torch.Tensor:
    """De-noising corruption: zero a fraction of the inputs and add Gaussian noise (Paper §4.1)."""
    keep = torch.rand(x.shape, generator=generator) >= cfg.mask_p
    return x * keep + cfg.noise_std * torch.randn(x.shape, generator=generator)


def train_autoencoder(images: np.ndarray, cfg: DedupConfig, seed: int = 0,
                      progress: bool = True) -> tuple[HashAutoencoder, list[float]]:
    """Train the de-noising, dropout-regularised autoencoder on uint8 32x32 images (Paper §4.1)."""
    if images.ndim != 4 or images.shape[1:] != (cfg.image_size, cfg.image_size, 3):
        raise ValueError(f"expected uint8 (N, {cfg.image_size}, {cfg.image_size}, 3) images, "
                         f"got {images.shape}; prepare the data at {cfg.image_size} px")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # init of the two Linear layers
    model = HashAutoencoder(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses: list[float] = []
    model.train()
    steps = cfg.epochs * max(1, len(images) // cfg.batch_size)
    bar = tqdm(total=steps, desc="autoencoder", disable=not progress)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(images), generator=gen).numpy()
        for start in range(0, max(1, len(images) - cfg.batch_size + 1), cfg.batch_size):
            rows = np.sort(order[start:start + cfg.batch_size])  # sorted rows read a memmap faster
            x = as_input(images[rows], cfg.standardize)  # (B, 3072)
            loss = nn.functional.mse_loss(model(corrupt(x, cfg, gen)), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    model.eval()
    set_bit_order(model, images[: min(len(images), 10_000)])
    return model, losses


def set_bit_order(model: HashAutoencoder, images: np.ndarray) -> None:
    """Spread the most balanced code units over the key's bytes, so every chunk carries information."""
    rate = code_bits(model, images, ordered=False).mean(0)  # (128,) how often each unit is active
    rank = np.argsort(np.abs(rate - 0.5), kind="stable")  # most balanced first
    n_bytes = len(rank) // 8
    position = (np.arange(len(rank)) % n_bytes) * 8 + np.arange(len(rank)) // n_bytes
    order = np.empty_like(rank)
    order[position] = rank
    model.bit_order.copy_(torch.from_numpy(order))


@torch.no_grad()
def code_bits(model: HashAutoencoder, images: np.ndarray, ordered: bool = True,
              batch_size: int = 1024) -> np.ndarray:
    """bool (N, 128): which ReLUs of the code are active, i.e. the semantic hash (Paper §4.1)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = as_input(images[start:start + batch_size], model.cfg.standardize)  # (B, 3072)
        pre = model.encoder(x)  # (B, 128) pre-activations
        out.append((pre > 0).numpy())
    bits = np.concatenate(out) if out else np.zeros((0, model.encoder.out_features), bool)
    return bits[:, model.bit_order.numpy()] if ordered else bits


def hash_images(model: HashAutoencoder, images: np.ndarray) -> np.ndarray:
    """uint8 (N, 16): the 128-bit keys of uint8 32x32 images, packed 8 bits a byte (Paper §4.1)."""
    return np.packbits(code_bits(model, images), axis=1)


@torch.no_grad()
def reconstruct(model: HashAutoencoder, images: np.ndarray) -> np.ndarray:
    """The autoencoder's reconstructions of uint8 images, as uint8 images of the same shape."""
    x = as_input(images)  # (N, 3072) in [-1, 1]
    if model.cfg.standardize:  # decode, then undo each image's standardisation for display
        mean, scale = x.mean(1, keepdim=True), x.std(1, keepdim=True) + 0.05
        y = model.eval()(as_input(images, True)) * scale + mean
    else:
        y = model.eval()(x)
    y = y.reshape(images.shape)  # (N, H, W, 3) in [-1, 1]
    return ((y.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).numpy()


def average_hash(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 8): the 64-bit perceptual average hash (8x8 grey > its mean), a baseline."""
    grey = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, H, W)
    n, h, w = grey.shape
    small = grey.reshape(n, 8, h // 8, 8, w // 8).mean((2, 4)).reshape(n, 64)  # (N, 64) block means
    return np.packbits(small > small.mean(1, keepdims=True), axis=1)


def file_hash(raw: bytes) -> np.ndarray:
    """uint8 (32,): SHA-256 of a file's bytes, the exact-copy baseline."""
    return np.frombuffer(hashlib.sha256(raw).digest(), np.uint8)


# ---------------------------------------------------------------- grouping keys


def group_exact(keys: np.ndarray) -> np.ndarray:
    """Group labels (N,) of identical keys, in one linear pass over a dict (Paper §4.1)."""
    buckets: dict[bytes, int] = {}
    return np.fromiter((buckets.setdefault(k, len(buckets)) for k in map(bytes, keys)), np.int64, len(keys))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between packed uint8 keys a and b (same shape (..., n_bytes))."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(-1, dtype=np.int64)


def group_within(keys: np.ndarray, radius: int) -> tuple[np.ndarray, dict]:
    """Group labels (N,) joining keys within `radius` bits, by multi-index hashing; plus search stats."""
    exact = group_exact(keys)
    if radius == 0:
        return exact, {"unique_keys": int(exact.max(initial=-1) + 1), "candidates": 0, "edges": 0}
    if radius + 1 > keys.shape[1]:
        raise ValueError(f"radius {radius} needs {radius + 1} chunks but keys have {keys.shape[1]} bytes")
    _, first = np.unique(exact, return_index=True)
    unique = keys[first]  # (U, n_bytes): one row per distinct key
    edges, candidates = [], 0
    for chunk in np.array_split(np.arange(keys.shape[1]), radius + 1):  # byte-aligned chunks
        sub = np.ascontiguousarray(unique[:, chunk]).view(np.dtype((np.void, len(chunk)))).ravel()
        order = np.argsort(sub, kind="stable")
        starts = np.flatnonzero(np.r_[True, sub[order][1:] != sub[order][:-1], True])
        sizes = np.diff(starts)
        a, b = order[starts[:-1][sizes == 2]], order[starts[:-1][sizes == 2] + 1]  # pairs: all at once
        candidates += len(a)
        near = hamming(unique[a], unique[b]) <= radius
        edges.append(np.stack([a[near], b[near]]))
        for lo, size in zip(starts[:-1][sizes > 2], sizes[sizes > 2]):  # larger buckets, one by one
            pairs, n = _pairs_within(unique, order[lo:lo + size], radius)
            edges.append(pairs)
            candidates += n
    pairs = np.unique(np.concatenate(edges, axis=1), axis=1)
    n = len(unique)
    graph = coo_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    stats = {"unique_keys": n, "candidates": candidates, "edges": int(pairs.shape[1])}
    return comp[exact].astype(np.int64), stats


def _pairs_within(keys: np.ndarray, members: np.ndarray, radius: int) -> tuple[np.ndarray, int]:
    """(2, E) member pairs within `radius` bits and the number compared, in blocks of bounded memory."""
    block = max(1, (1 << 22) // (len(members) * keys.shape[1]))  # about 4 MB of XORed keys at a time
    found = []
    for s in range(0, len(members), block):
        rows = members[s:s + block]
        d = hamming(keys[rows][:, None, :], keys[members][None, :, :])  # (block, M)
        i, j = np.nonzero(d <= radius)
        later = j > i + s  # each unordered pair once
        found.append(np.stack([rows[i[later]], members[j[later]]]))
    return np.concatenate(found, axis=1), len(members) * (len(members) - 1) // 2


def groups_from_labels(labels: np.ndarray) -> list[list[int]]:
    """Indices of each group with two or more members, in dataset order."""
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1], True])
    groups = [order[lo:hi].tolist() for lo, hi in zip(starts[:-1], starts[1:]) if hi - lo > 1]
    return sorted(groups, key=lambda g: g[0])


def pair_scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Pairwise precision, recall and false-positive rate of predicted groups against true ones."""
    def pairs(counts):
        return int((counts * (counts - 1) // 2).sum())
    _, joint = np.unique(np.stack([pred, truth]), axis=1, return_counts=True)
    tp = pairs(joint)
    predicted = pairs(np.unique(pred, return_counts=True)[1])
    true = pairs(np.unique(truth, return_counts=True)[1])
    negatives = len(truth) * (len(truth) - 1) // 2 - true
    return {"precision": tp / predicted if predicted else None, "recall": tp / true if true else None,
            "fpr": (predicted - tp) / negatives if negatives else None,
            "true_pairs": true, "predicted_pairs": predicted, "false_pairs": predicted - tp}


# ---------------------------------------------------------------- streaming a dataset


@dataclass
class HashedSet:
    """The keys of a whole dataset, hashed batch by batch, and how fast that went."""

    dataset: str
    ids: list
    keys: np.ndarray  # (N, 16) uint8
    seconds: float  # decode + hash, end to end
    hash_seconds: float  # the autoencoder alone
    threads: int

    @property
    def images_per_s(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else float("nan")


def hash_batches(model: HashAutoencoder, batches: Iterable[tuple[list, np.ndarray]], dataset: str = "",
                 total: int | None = None) -> HashedSet:
    """Hash (ids, uint8 batch) pairs one batch at a time: memory holds one batch of pixels."""
    ids: list = []
    keys: list[np.ndarray] = []
    hash_s = 0.0
    start = time.perf_counter()
    for batch_ids, batch in tqdm(batches, desc=f"hashing {dataset}", total=total, unit="batch"):
        t = time.perf_counter()
        keys.append(hash_images(model, batch))  # (B, 16)
        hash_s += time.perf_counter() - t
        ids.extend(_plain(i) for i in batch_ids)
    packed = np.concatenate(keys) if keys else np.zeros((0, model.encoder.out_features // 8), np.uint8)
    return HashedSet(dataset, ids, packed, time.perf_counter() - start, hash_s, torch.get_num_threads())


def hash_dataset(model: HashAutoencoder, dataset: str, batch_size: int = 256, split: str = "train",
                 limit: int | None = None) -> HashedSet:
    """Stream a registry dataset through the hash without caching it (Paper §4.1, LSUN's 3M images)."""
    from dcgan_lib import data

    batches: Iterator = data.stream(dataset, model.cfg.image_size, batch_size=batch_size, split=split)
    if limit is not None:
        batches = _take_images(batches, limit)
    return hash_batches(model, batches, dataset)


def _take_images(batches: Iterator, limit: int) -> Iterator:
    left = limit
    for ids, batch in batches:
        if left <= 0:
            return
        yield ids[:left], batch[:left]
        left -= len(batch)


def _plain(item_id):
    return item_id.item() if hasattr(item_id, "item") else item_id


def groups_document(hashed: HashedSet, radius: int, model_path: str | None = None) -> dict:
    """The groups file: duplicate groups as lists of item ids plus a summary (`--dedup FILE`)."""
    labels, stats = group_within(hashed.keys, radius)
    groups = [[hashed.ids[i] for i in g] for g in groups_from_labels(labels)]
    in_groups = sum(len(g) for g in groups)
    return {
        "format": FORMAT, "dataset": hashed.dataset, "radius": radius,
        "method": "semantic hash, exact key (Paper §4.1)" if radius == 0
        else f"semantic hash, Hamming radius {radius} (multi-index hashing)",
        "model": model_path,
        "summary": {"images": len(hashed.ids), "groups": len(groups), "images_in_groups": in_groups,
                    "images_removed": in_groups - len(groups), "images_per_s": round(hashed.images_per_s, 1)},
        "search": stats,
        "groups": groups,
    }


def keep_mask(groups_json, ids) -> np.ndarray:
    """bool (N,) over `ids`: False for every duplicate but the first of its group (registry `--dedup`)."""
    doc = groups_json if isinstance(groups_json, dict) else json.loads(Path(groups_json).read_text())
    if doc.get("format") != FORMAT or "groups" not in doc:
        raise ValueError(f"not a dedup groups file (format {FORMAT}); write one with "
                         "`python -m dcgan_lib dedup --dataset NAME --out FILE.json`")
    where = {str(i): n for n, i in enumerate(ids)}
    mask = np.ones(len(where), bool)
    seen = 0
    for group in doc["groups"]:
        present = sorted(where[str(i)] for i in group if str(i) in where)
        seen += len(present)
        mask[present[1:]] = False
    if doc["groups"] and not seen:
        raise ValueError(f"none of the ids in this dedup file (dataset {doc.get('dataset')!r}) are in "
                         "the data being loaded; write one for this dataset")
    return mask


# ---------------------------------------------------------------- training data and model cache


def training_images(cfg: DedupConfig, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """uint8 (N, 32, 32, 3) autoencoder training images, disjoint from the benchmark's images."""
    from dcgan_lib import data

    rng = np.random.default_rng(seed)
    held_out = {name: set(map(str, ids)) for name, ids in _bench_ids(cfg).items()}
    parts, infos = [], []
    for name in cfg.train_sets:
        ds = data.prepare(name, cfg.image_size, limit=cfg.train_pool)
        banned = held_out.get((name, "train"), set())
        rows = np.array([n for n, i in enumerate(ds.ids) if str(i) not in banned])
        if cfg.train_limit is not None and len(rows) > cfg.train_limit:
            rows = np.sort(rng.choice(rows, cfg.train_limit, replace=False))
        parts.append(np.asarray(ds.images[rows]))
        infos.append({**{k: ds.info.get(k) for k in ("dataset", "split", "source", "sha256")}, "n": len(rows)})
    return np.concatenate(parts), infos


def _bench_ids(cfg: DedupConfig) -> dict:
    """The item ids each benchmark set takes (every stride-th item), known without decoding."""
    out = {}
    for name, split, stride, count in cfg.bench_sets:
        out[(name, split)] = [i for n, (i, _) in zip(range(stride * count), _raw(name, split)) if n % stride == 0]
    return out


def _raw(name: str, split: str) -> Iterator[tuple[object, bytes]]:
    from dcgan_lib import data

    return data.iter_raw(name, split=split)


def model_path(cfg: DedupConfig, profile: str, seed: int = 0) -> Path:
    """Where the trained hash of a profile is kept (runs/models/dedup/...)."""
    return results.ROOT / "runs" / "models" / "dedup" / f"hash_ae_{profile}_{'+'.join(cfg.train_sets)}_s{seed}.pt"


def load_or_train(cfg: DedupConfig, profile: str, seed: int = 0, retrain: bool = False,
                  progress: bool = True) -> tuple[HashAutoencoder, dict]:
    """The trained autoencoder of a profile, training (and saving) it when missing (Paper §4.1)."""
    path = model_path(cfg, profile, seed)
    if path.exists() and not retrain:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved["config"] == asdict(cfg):
            model = HashAutoencoder(cfg)
            model.load_state_dict(saved["state"])
            return model.eval(), {**saved["info"], "path": str(path), "loaded": True}
    with _threads(cfg.threads), results.stopwatch() as wall:
        images, sources = training_images(cfg, seed)
        model, losses = train_autoencoder(images, cfg, seed, progress=progress)
    info = {"losses": losses, "data": sources, "images": len(images), "wall_s": wall(), "seed": seed}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(cfg), "state": model.state_dict(), "info": info}, path)
    return model, {**info, "path": str(path), "loaded": False}


class _threads:
    """Context manager that runs torch with at most n threads (the machine is shared)."""

    def __init__(self, n: int):
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(max(1, min(self.n, self.old)))

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


# ---------------------------------------------------------------- planted-duplicate benchmark


def perturb(raw: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """A near-duplicate file of an image: re-encoded, re-lit, resized or cropped (planted copies)."""
    if kind == "exact":
        return raw
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    w, h = img.size
    fmt, quality = "PNG", None
    if kind in ("resize", "combo"):
        s = rng.uniform(0.7, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.4)
        if kind == "combo":
            s = 1 + (s - 1) / 2
        img = img.resize((max(8, round(w * s)), max(8, round(h * s))), Image.BICUBIC)
    if kind in ("brightness", "combo"):
        img = ImageEnhance.Brightness(img).enhance(1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.15))
    if kind == "crop":  # 1-3 px of a 32 px image off each axis, split at random between the sides
        cx, cy = (round(rng.integers(1, 4) * d / 32) for d in (w, h))
        left, top = rng.integers(0, cx + 1), rng.integers(0, cy + 1)
        img = img.crop((left, top, w - (cx - left), h - (cy - top)))
    if kind in ("jpeg", "combo"):
        fmt, quality = "JPEG", int(rng.integers(40, 81))
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if quality else {}))
    return buf.getvalue()


@dataclass
class Benchmark:
    """Planted near-duplicates among distinct images, with every method's groups (Paper §4.1)."""

    base: np.ndarray  # (N, 32, 32, 3) distinct images
    base_source: list[str]
    copies: dict[str, np.ndarray]  # kind -> (K, 32, 32, 3)
    origin: dict[str, np.ndarray]  # kind -> (K,) index into base
    labels: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (kind, method) -> (N + K,)
    scores: dict[tuple[str, str], dict] = field(default_factory=dict)
    sweep: list[dict] = field(default_factory=list)  # radius sweep of the semantic hash, target kinds
    seconds: dict[str, float] = field(default_factory=dict)

    def truth(self, kind: str) -> np.ndarray:
        return np.r_[np.arange(len(self.base)), self.origin[kind]]

    def images(self, kind: str, index: np.ndarray) -> np.ndarray:
        n = len(self.base)
        return np.stack([self.base[i] if i < n else self.copies[kind][i - n] for i in index])


def methods(cfg: DedupConfig) -> tuple[str, ...]:
    """Names of the compared methods, in table order; the fifth is the default (ours)."""
    return ("file SHA-256", "average hash r=0", f"average hash r={cfg.ahash_radius}",
            "semantic hash r=0 (paper)", f"semantic hash r={cfg.radius} (ours)", f"semantic hash r={cfg.loose_radius}")


def build_benchmark(cfg: DedupConfig, seed: int = 0) -> tuple[Benchmark, dict[str, list[bytes]]]:
    """Pick distinct images and plant one copy of each kind for a random subset (Paper §4.1)."""
    from dcgan_lib import data

    raws, sources = [], []
    for name, split, stride, count in cfg.bench_sets:
        for n, (_, raw) in zip(range(stride * count), _raw(name, split)):
            if n % stride == 0:
                raws.append(raw)
                sources.append(name)
    rng = np.random.default_rng(seed)
    base = np.stack([data.decode_image(r, cfg.image_size) for r in raws])
    copies, origin, copy_raws = {}, {}, {"base": raws}
    for kind in KINDS:
        pick = np.sort(rng.choice(len(raws), min(cfg.bench_copies, len(raws)), replace=False))
        files = [perturb(raws[i], kind, rng) for i in pick]
        copies[kind] = np.stack([data.decode_image(f, cfg.image_size) for f in files])
        origin[kind], copy_raws[kind] = pick, files
    return Benchmark(base, sources, copies, origin), copy_raws


def run_benchmark(model: HashAutoencoder, cfg: DedupConfig, seed: int = 0) -> Benchmark:
    """Precision, recall and false-positive rate per kind of change and method (Paper §4.1, measured)."""
    bench, raws = build_benchmark(cfg, seed)
    keyers = {"sha": lambda part: np.stack([file_hash(r) for r in raws[part]]),
              "ahash": lambda part: average_hash(bench.base if part == "base" else bench.copies[part]),
              "ae": lambda part: hash_images(model, bench.base if part == "base" else bench.copies[part])}
    keys = {(k, part): keyer(part) for k, keyer in keyers.items() for part in ("base", *KINDS)}
    radii = (0, 0, cfg.ahash_radius, 0, cfg.radius, cfg.loose_radius)
    runs = list(zip(methods(cfg), ("sha", "ahash", "ahash", "ae", "ae", "ae"), radii, strict=True))
    for kind, (method, key, radius) in itertools.product(KINDS, runs):
        both = np.concatenate([keys[key, "base"], keys[key, kind]])  # (N + K, n_bytes)
        t = time.perf_counter()
        labels, _ = group_within(both, radius)
        bench.seconds[method] = bench.seconds.get(method, 0.0) + time.perf_counter() - t
        bench.labels[kind, method] = labels
        bench.scores[kind, method] = pair_scores(bench.truth(kind), labels)
    target = np.concatenate([keys["ae", part] for part in ("base", *TARGET_KINDS)])
    truth = np.concatenate([np.arange(len(bench.base)), *[bench.origin[t] for t in TARGET_KINDS]])
    for radius in range(9):
        bench.sweep.append({"radius": radius, **pair_scores(truth, group_within(target, radius)[0])})
    return bench


def score_table(bench: Benchmark, cfg: DedupConfig) -> list[dict]:
    """One row per (kind, method): precision, recall, false-positive rate, pairs."""
    return [{"kind": kind, "method": method, **bench.scores[kind, method]}
            for kind, method in itertools.product(KINDS, methods(cfg))]


def table_markdown(rows: list[dict]) -> str:
    """The precision/recall table as markdown."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    def sci(v):
        return "n/a" if v is None else f"{v:.1e}"
    lines = ["| change | method | precision | recall | false-positive rate | false pairs |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['kind']} | {r['method']} | {pct(r['precision'])} | {pct(r['recall'])} | "
              f"{sci(r['fpr'])} | {r['false_pairs']} |" for r in rows]
    return "\n".join(lines) + "\n"


def gallery(bench: Benchmark, which: str, method: str, n: int = 8, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Image pairs for a gallery: `true` collisions, `false` collisions or `missed` duplicates.

    Returns uint8 (2k, 32, 32, 3), the k left images then the k right ones (show with nrow=k),
    and a kind label per pair.
    """
    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, int, int]] = []
    for kind in KINDS:
        labels, truth, nb = bench.labels[kind, method], bench.truth(kind), len(bench.base)
        copy_idx = nb + np.arange(len(bench.origin[kind]))
        found = labels[copy_idx] == labels[bench.origin[kind]]
        if which in ("true", "missed"):
            hit = copy_idx[found if which == "true" else ~found]
            pairs += [(kind, int(truth[i]), int(i)) for i in hit]
        elif which == "false":
            for g in groups_from_labels(labels):
                g = np.array(g)
                a, b = np.triu_indices(len(g), 1)
                bad = truth[g[a]] != truth[g[b]]
                pairs += [(kind, int(g[a][k]), int(g[b][k])) for k in np.flatnonzero(bad)[:1]]
        else:
            raise ValueError(f"which must be true, false or missed, got {which!r}")
    if which == "false":  # base-only collisions repeat in every kind: keep one of each
        uniq = {}
        for p in pairs:
            uniq.setdefault((p[1], p[2]) if p[2] < len(bench.base) else p, p)
        pairs = list(uniq.values())
    if not pairs:
        return np.zeros((0, 32, 32, 3), np.uint8), []
    pick = sorted(rng.choice(len(pairs), min(n, len(pairs)), replace=False))
    chosen = [pairs[k] for k in pick]
    left = np.stack([bench.images(k, np.array([a]))[0] for k, a, _ in chosen])
    right = np.stack([bench.images(k, np.array([b]))[0] for k, _, b in chosen])
    return np.concatenate([left, right]), [k for k, _, _ in chosen]


def paper_claims() -> dict:
    """The paper's de-duplication numbers (Paper §4.1)."""
    return {"false_positive_rate": "< 1/100 (visual inspection of hash collisions)",
            "duplicates_removed": 275_000, "images": 3_033_043}



# ---------------------------------------------------------------- records and scans


def save_benchmark(bench: Benchmark, cfg: DedupConfig, profile: str, seed: int, wall_s: float,
                   model_info: dict, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write dedup_precision_recall.md and its JSON record (ours beside the paper's claim)."""
    out_dir = Path(out_dir) if out_dir is not None else results.figures_dir(profile)
    rows = score_table(bench, cfg)
    sources = ", ".join(f"{n} {s} ({c} images, 1 in {k} in file order)" for n, s, k, c in cfg.bench_sets)
    text = ("# De-duplication: precision and recall on planted near-duplicates (Paper §4.1)\n\n"
            f"Distinct images: {len(bench.base)} from {sources}; {cfg.bench_copies} planted copies per kind "
            f"of change. Pairwise scores; false-positive rate = false pairs / all non-duplicate pairs.\n"
            f"Paper: false-positive rate under 1 in 100 by visual inspection of hash collisions "
            f"(here that is 1 - precision); about 275,000 near-duplicates removed from 3,033,043 LSUN images.\n"
            f"Profile {profile}, seed {seed}; record dedup_precision_recall.json.\n\n" + table_markdown(rows))
    md = out_dir / "dedup_precision_recall.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)
    from dcgan_lib import data  # provenance of the benchmark's source archives

    sources_info = [{**data.describe(name), "split": split, "every": stride, "images": count}
                    for name, split, stride, count in cfg.bench_sets]
    ours = f"semantic hash r={cfg.radius} (ours)"
    target = {k: bench.scores[k, ours] for k in TARGET_KINDS}
    rec = results.write_record(
        "dedup_precision_recall", name="De-duplication precision/recall on planted near-duplicates (§4.1)",
        profile=profile, seed=seed, wall_s=wall_s, out_dir=out_dir,
        metrics={"rows": rows, "radius_sweep": bench.sweep, "grouping_seconds": bench.seconds,
                 "default_radius": cfg.radius,
                 "target_kinds_min_precision": min(v["precision"] or 0 for v in target.values()),
                 "target_kinds_min_recall": min(v["recall"] or 0 for v in target.values())},
        paper=paper_claims(), data={"benchmark": sources_info, "autoencoder": model_info.get("data")},
        config=asdict(cfg), model={k: v for k, v in model_info.items() if k != "losses"})
    return md, rec


def file_hash_groups(dataset: str, split: str = "train", limit: int | None = None) -> list[list]:
    """Groups of byte-identical files (SHA-256), the exact-copy baseline on a whole dataset."""
    ids, keys = [], []
    for item_id, raw in itertools.islice(_raw(dataset, split), limit):
        ids.append(item_id)
        keys.append(file_hash(raw))
    if not ids:
        return []
    return [[ids[i] for i in g] for g in groups_from_labels(group_exact(np.stack(keys)))]


def scan(model: HashAutoencoder, dataset: str, cfg: DedupConfig, out_dir: Path | None = None) -> dict:
    """De-duplicate a whole dataset by streaming: groups at r=0 and the default radius, plus SHA-256."""
    hashed = hash_dataset(model, dataset, limit=cfg.scan_limit)
    docs = {r: groups_document(hashed, r) for r in sorted({0, cfg.radius})}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{dataset.replace(':', '_').replace('/', '_')}.json").write_text(
            json.dumps(docs[cfg.radius], indent=1) + "\n")
    files = file_hash_groups(dataset, limit=cfg.scan_limit)
    return {"dataset": dataset, "images": len(hashed.ids), "threads": hashed.threads,
            "images_per_s": hashed.images_per_s, "hash_images_per_s": len(hashed.ids) / hashed.hash_seconds,
            "seconds": hashed.seconds,
            **{f"r{r}": {**d["summary"], "search": d["search"]} for r, d in docs.items()},
            "sha256": {"groups": len(files), "images_removed": sum(len(g) - 1 for g in files)},
            "groups": docs[cfg.radius]["groups"]}


def group_images(dataset: str, groups: list[list], n_groups: int = 8, max_per_group: int = 4,
                 size: int = 32) -> tuple[np.ndarray, int]:
    """Members of the first groups for a gallery: uint8 (n_groups * k, size, size, 3), blank-padded, and k."""
    from dcgan_lib import data

    chosen = [g[:max_per_group] for g in groups[:n_groups]]
    per_group = max((len(g) for g in chosen), default=0)
    wanted = {str(i) for g in chosen for i in g}
    found: dict[str, np.ndarray] = {}
    for item_id, raw in _raw(dataset, "train"):  # one pass over the files, decoding only group members
        if str(item_id) in wanted:
            found[str(item_id)] = data.decode_image(raw, size)
            if len(found) == len(wanted):
                break
    blank = np.full((size, size, 3), 255, np.uint8)
    tiles = [found.get(str(g[k]), blank) if k < len(g) else blank for g in chosen for k in range(per_group)]
    return (np.stack(tiles) if tiles else np.zeros((0, size, size, 3), np.uint8)), per_group


def save_scans(scans: list[dict], cfg: DedupConfig, profile: str, seed: int, model_info: dict,
               out_dir: Path | None = None) -> Path:
    """Record how many duplicates each scanned dataset holds and how fast hashing ran (Paper §4.1)."""
    from dcgan_lib import data

    metrics = {s["dataset"]: {k: v for k, v in s.items() if k != "groups"} for s in scans}
    largest = max(scans, key=lambda s: s["images"])
    return results.write_record(
        "dedup_scans", name="De-duplicating the mirror's datasets with the semantic hash (§4.1)",
        profile=profile, seed=seed, wall_s=sum(s["seconds"] for s in scans), out_dir=out_dir,
        metrics={"datasets": metrics, "default_radius": cfg.radius,
                 "throughput": {"dataset": largest["dataset"], "images": largest["images"],
                                "images_per_s_decode_and_hash": largest["images_per_s"],
                                "images_per_s_hash_only": largest["hash_images_per_s"],
                                "torch_threads": largest["threads"], "cpu_count": os.cpu_count(),
                                "load_average_1min": os.getloadavg()[0]}},
        paper=paper_claims(), data={"scanned": [data.describe(s["dataset"]) for s in scans],
                                    "autoencoder": model_info.get("data")},
        model={k: v for k, v in model_info.items() if k != "losses"})
