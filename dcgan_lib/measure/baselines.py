"""The comparison methods of Tables 1 and 2 that are not the DCGAN probe (Paper §5.1-5.2).

Pixel-space KNN (Table 2's weakest baseline), the single-layer K-means network of Coates & Ng (2011)
(Table 1's "1 layer K-means": whitened patches, triangle code, quadrant pooling) and the same CNN as D
trained with the labels only (Table 2's "supervised CNN", random hyper-parameter search).

This module owns the methods and knows nothing of a protocol: which images, which label draws, how C
is picked and how a row is recorded all live in dcgan_lib.measure.probes, which applies one protocol to the
DCGAN probe and to every baseline alike (so the comparison is fair), and imports this module.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import KNeighborsClassifier
from torch import nn
from tqdm.auto import tqdm

from dcgan_lib.gan import nets
from dcgan_lib.measure.features import uint8_to_float

# --- pixel KNN -----------------------------------------------------------------------------------

def knn_over_draws(x_pool, y_pool, x_val, y_val, x_test, y_test, draws: Sequence[np.ndarray],
                   ks: tuple[int, ...] = (1, 3, 5, 9)) -> dict:
    """Pixel-space KNN fitted on each draw of labelled pool indices, k picked on validation per draw.

    Table 2's weakest baseline. The draws (class-balanced, from probe_data.class_balanced_draw) come from the
    caller, so the KNN rows and the L2-SVM rows are scored on label draws made the same way. k is chosen
    before the test digits are classified; `test_correct` counts, per test digit, the draws that got it right.
    """
    flat = [np.asarray(x, np.float32).reshape(len(x), -1) / 255 for x in (x_pool, x_val, x_test)]
    val_err, test_err, chosen = [], [], []
    correct = np.zeros(len(y_test), np.int64)
    for idx in tqdm(draws, desc="KNN draws", leave=False):
        fits = {k: KNeighborsClassifier(k).fit(flat[0][idx], y_pool[idx]) for k in ks}
        errs = {k: float((m.predict(flat[1]) != y_val).mean()) for k, m in fits.items()}
        k = min(errs, key=lambda k: (errs[k], k))
        chosen.append(k)
        val_err.append(errs[k])
        right = fits[k].predict(flat[2]) == y_test
        correct += right
        test_err.append(1 - float(right.mean()))
    return {"test_error": float(np.mean(test_err)), "test_error_ci95": float(1.96 * np.std(test_err)),
            "val_error": float(np.mean(val_err)), "k": chosen, "draws": len(draws), "test_correct": correct}


# --- Coates & Ng's 1-layer K-means network -----------------------------------------------------

@dataclass(frozen=True)
class KMeansConfig:
    """Coates & Ng (2011) single-layer network: 6x6 whitened patches, triangle code, 4-quadrant sum pooling."""

    k: int = 1600
    patch: int = 6
    n_patches: int = 400_000
    norm_eps: float = 10.0  # per-patch contrast normalisation, pixels in 0..255
    whiten_eps: float = 0.1  # ZCA whitening
    batch_size: int = 64


class KMeansEncoder:
    """Fitted whitening and centroids; `encode` maps uint8 images to 4 K pooled triangle features."""

    def __init__(self, cfg: KMeansConfig, mean: torch.Tensor, whiten: torch.Tensor, centroids: torch.Tensor):
        self.cfg, self.mean, self.whiten, self.centroids = cfg, mean, whiten, centroids

    def _patches(self, images: np.ndarray, device) -> torch.Tensor:
        x = uint8_to_float(images, device).add_(1).mul_(127.5)  # (B, 3, H, W) in 0..255
        p = F.unfold(x, self.cfg.patch).transpose(1, 2)  # (B, L, 3 * patch * patch), L patches per image
        p = (p - p.mean(-1, keepdim=True)) / (p.var(-1, keepdim=True) + self.cfg.norm_eps).sqrt()
        return (p - self.mean.to(device)) @ self.whiten.to(device)  # (B, L, D) whitened

    def encode(self, images: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
        """Triangle activations max(0, mean_k z - z_k), summed over the 4 image quadrants (Coates & Ng)."""
        c = self.centroids.to(device)  # (K, D)
        side = images.shape[1] - self.cfg.patch + 1  # patch positions per side, 27 for 32 px
        half = (side + 1) // 2
        out = np.empty((len(images), 4 * len(c)), np.float32)
        with torch.no_grad():
            for start in tqdm(range(0, len(images), self.cfg.batch_size), desc="K-means encode", leave=False):
                p = self._patches(images[start:start + self.cfg.batch_size], device)  # (B, L, D)
                z = torch.cdist(p, c.expand(len(p), -1, -1))  # (B, L, K) distances
                f = (z.mean(-1, keepdim=True) - z).clamp_min_(0)  # (B, L, K) triangle code
                f = f.view(len(p), side, side, -1)  # (B, side, side, K)
                quads = [f[:, :half, :half], f[:, :half, half:], f[:, half:, :half], f[:, half:, half:]]
                out[start:start + len(p)] = torch.cat([q.sum((1, 2)) for q in quads], 1).cpu().numpy()  # (B, 4K)
        return out


def fit_kmeans(images: np.ndarray, cfg: KMeansConfig, seed: int = 0,
               device: torch.device | str = "cpu") -> KMeansEncoder:
    """Random patches -> contrast normalise -> ZCA whiten -> MiniBatchKMeans centroids (Coates & Ng 2011)."""
    rng = np.random.default_rng(seed)
    n_img = min(len(images), cfg.n_patches)
    per_image = math.ceil(cfg.n_patches / n_img)
    chosen = np.sort(rng.choice(len(images), n_img, replace=False))
    patches = []
    for start in range(0, n_img, 256):
        x = uint8_to_float(images[chosen[start:start + 256]], device).add_(1).mul_(127.5)
        p = F.unfold(x, cfg.patch).transpose(1, 2)  # (B, L, D)
        pick = torch.as_tensor(rng.integers(0, p.shape[1], (len(p), per_image)), device=p.device)
        patches.append(torch.gather(p, 1, pick.unsqueeze(-1).expand(-1, -1, p.shape[2])).flatten(0, 1))
    p = torch.cat(patches)[:cfg.n_patches].double()  # (n_patches, D)
    p = (p - p.mean(1, keepdim=True)) / (p.var(1, keepdim=True) + cfg.norm_eps).sqrt()
    mean = p.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((p - mean).T))
    whiten = evecs @ torch.diag(1 / (evals.clamp_min(0) + cfg.whiten_eps).sqrt()) @ evecs.T  # (D, D) ZCA
    white = ((p - mean) @ whiten).float().cpu().numpy()
    km = MiniBatchKMeans(n_clusters=cfg.k, batch_size=max(1024, 2 * cfg.k), n_init=3, random_state=seed)
    km.fit(white)
    return KMeansEncoder(cfg, mean.float(), whiten.float(), torch.as_tensor(km.cluster_centers_, dtype=torch.float32))


# --- the same CNN trained with labels only -----------------------------------------------------

class SupervisedCNN(nn.Module):
    """D's conv blocks with a dropout + linear 10-way head instead of the real/fake logit (Paper §5.2)."""

    def __init__(self, cfg: nets.NetConfig, classes: int = 10, dropout: float = 0.0):
        super().__init__()
        body = nets.Discriminator(cfg)
        nets.init_weights(body)
        self.blocks = body.blocks
        side = cfg.image_size
        for _, stride in cfg.d_layers:
            side //= stride
        flat = cfg.d_layers[-1][0] * side * side  # last conv's channels x side x side
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)  # side halves at stride 2
        return self.head(x)  # (N, classes)


@dataclass(frozen=True)
class CnnHparams:
    """One random-search trial's hyper-parameters."""

    lr: float
    beta1: float
    weight_decay: float
    dropout: float
    batch_size: int
    epochs: int


def sample_hparams(rng: np.random.Generator, epochs: int) -> CnnHparams:
    """Log-uniform learning rate and weight decay, uniform dropout, a batch size from 32/64/128."""
    return CnnHparams(lr=float(10 ** rng.uniform(-4, -2)), beta1=float(rng.choice([0.5, 0.9])),
                      weight_decay=float(10 ** rng.uniform(-6, -2)), dropout=float(rng.uniform(0, 0.6)),
                      batch_size=int(rng.choice([32, 64, 128])), epochs=epochs)


def train_cnn(cfg: nets.NetConfig, images: np.ndarray, labels: np.ndarray, hp: CnnHparams, seed: int = 0,
              device: torch.device | str = "cpu") -> SupervisedCNN:
    """Train the supervised CNN with Adam on the labelled images only (Paper §5.2 baseline)."""
    torch.manual_seed(seed)
    model = SupervisedCNN(cfg, int(labels.max()) + 1, hp.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), hp.lr, betas=(hp.beta1, 0.999), weight_decay=hp.weight_decay)
    rng = np.random.default_rng(seed)
    y_all = torch.as_tensor(labels, device=device)
    model.train()
    for _ in range(hp.epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(order), hp.batch_size):
            idx = np.sort(order[start:start + hp.batch_size])
            if len(idx) < 2:
                continue  # BatchNorm needs two examples
            loss = F.cross_entropy(model(uint8_to_float(images[idx], device)), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def cnn_predict(model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
                batch_size: int = 512) -> np.ndarray:
    """A trained CNN's predicted class per image (N,)."""
    with torch.no_grad():
        return np.concatenate([model(uint8_to_float(images[start:start + batch_size], device)).argmax(1).cpu().numpy()
                               for start in range(0, len(images), batch_size)])


def cnn_error(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device | str = "cpu",
              batch_size: int = 512) -> float:
    """Classification error of a trained CNN."""
    return float((cnn_predict(model, images, device, batch_size) != np.asarray(labels)).mean())


def random_search(cfg: nets.NetConfig, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                  trials: int, epochs: int, seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """Random hyper-parameter search, each trial scored by validation error (Paper §5.2: 64 trials)."""
    rng = np.random.default_rng(seed)
    results, best = [], None
    for t in tqdm(range(trials), desc="random search", leave=False):
        hp = sample_hparams(rng, epochs)
        model = train_cnn(cfg, *train, hp, seed=seed + t, device=device)
        err = cnn_error(model, *val, device=device)
        results.append({**asdict(hp), "val_error": err})
        if best is None or err < best[0]:
            best = (err, hp, model)
    return {"val_error": best[0], "hparams": asdict(best[1]), "trials": results, "model": best[2]}
