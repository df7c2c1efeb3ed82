"""De-duplication with a semantic hash (Paper §4.1): a 3072-128-3072 denoising autoencoder.

The paper trains a de-noising, dropout-regularised ReLU autoencoder on 32x32 centre crops and
binarises its 128-d code (each ReLU active or not) into a key; images with the same key are
duplicates, found in one linear pass. Exact keys miss many lightly changed copies, so this
module also groups keys within a Hamming radius r by multi-index hashing (split the key into
r+1 chunks: by pigeonhole a match within r shares one chunk exactly), which stays near-linear.
It also keeps the trained hash of each profile (load_or_train). dedup_robust extends the search
to shifted and cropped copies (beyond the paper), dedup_scan streams a whole dataset through
either and writes the groups file, and dedup_bench measures them on planted near-duplicates.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch import nn
from tqdm.auto import tqdm

from dcgan_lib.config import profiles
from dcgan_lib.data import data, datasets
from dcgan_lib.records import results

KINDS = ("exact", "jpeg", "brightness", "resize", "crop", "combo")  # planted changes
TARGET_KINDS = ("jpeg", "brightness", "resize")  # the light changes the default radius is tuned for
ROBUST_KINDS = ("shift", "crop", "jpeg30", "noise", "contrast", "mixed")  # harder changes, planted together
LIGHT_GOALS = {"precision": 0.99, "recall": 0.8}  # the default radius' goal: lowest over the TARGET_KINDS
ROBUST_GOALS = {"precision": 0.99, "recall": 0.9, "shift_recall": 0.8}  # the robust search's goal (all kinds)


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
    # held-out images for the robust search (name, split, stride, count, offset): disjoint from bench_sets,
    # never used to choose its settings; measured with seed + 1
    holdout_sets: tuple[tuple[str, str, int, int, int], ...] = (("cifar10", "test", 2, 5000, 1),
                                                               ("tiny_imagenet", "train", 14, 5000, 7))
    robust_margin: int = 3  # px cut off each side of the 32 px image before its centre window is hashed
    robust_shift: int = 3  # probes shift that window by up to this many px on each axis
    robust_crops: tuple[int, ...] = (1, 2, 3)  # probes zoom in as if this many px had been cropped
    robust_radius: int = 6  # Hamming radius between a probe's key and a centre key
    robust_ncc: float = 0.9  # verification: lowest normalised cross-correlation of the aligned grey windows
    scan_sets: tuple[str, ...] = ("bedrooms", "tiny_imagenet")
    scan_limit: int | None = None
    threads: int = 1  # torch threads: the 2-core machines this runs on are shared, and 2 threads contend


def config_for(profile: str | profiles.Profile) -> DedupConfig:
    """The de-duplication settings of a profile (profiles.PROFILES holds the values). Paper §4.1."""
    return DedupConfig(**profiles.get_profile(profile).dedup)


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



# ---------------------------------------------------------------- training data and model cache


def training_images(cfg: DedupConfig, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """uint8 (N, 32, 32, 3) autoencoder training images, disjoint from the benchmark's images."""
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
    """The item ids the benchmark sets and the held-out sets take, known without decoding."""
    out: dict = {}
    for name, split, stride, count, offset in [(*s, 0) for s in cfg.bench_sets] + list(cfg.holdout_sets):
        out.setdefault((name, split), []).extend(i for i, _ in bench_items(name, split, stride, count, offset))
    return out


def bench_items(name: str, split: str, stride: int, count: int, offset: int = 0) -> Iterator[tuple[object, bytes]]:
    """(id, file bytes) of items offset, offset + stride, ... (count of them) of a split, in file order."""
    for n, item in zip(range(offset + stride * count), _raw(name, split)):
        if n >= offset and (n - offset) % stride == 0:
            yield item


def _raw(name: str, split: str) -> Iterator[tuple[object, bytes]]:
    return datasets.iter_raw(name, split=split)


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


def paper_claims() -> dict:
    """The paper's de-duplication numbers (Paper §4.1)."""
    return {"false_positive_rate": "< 1/100 (visual inspection of hash collisions)",
            "duplicates_removed": 275_000, "images": 3_033_043}
