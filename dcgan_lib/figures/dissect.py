"""Seeing and editing the networks: guided backprop through D, forgetting windows in G (Paper §6.2-6.3.1).

Fig. 5: `unit_responses` finds the real images that excite a unit of D's last conv layer most,
`guided_backprop` shows which pixels drive that maximal response (Springenberg et al. 2014).
Fig. 6: window boxes on samples -> G activations inside / outside boxes -> logistic regression
-> `drop_maps` zeroes every map with a positive weight, and `window_scores` measures the effect.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from matplotlib.widgets import RectangleSelector
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from dcgan_lib.figures.plots import image_grid


# ============================================================================ Fig. 5: D's units
def _as_float(images) -> torch.Tensor:
    """uint8 NHWC array/tensor or float NCHW tensor in [-1, 1] -> float NCHW in [-1, 1]."""
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        return images
    x = torch.tensor(np.asarray(images))  # a copy: cached images are read-only memory maps
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)  # N x 3 x H x W


def calibrate_d(D: nn.Module, images, batch_size: int = 128) -> nn.Module:
    """A copy of D in eval mode with BatchNorm statistics averaged over `images` (real images).

    The authors' code always used batch statistics; fixed statistics from real images keep each
    image's response independent of the rest of its batch. The same is done for the random-init
    baseline, so trained and random D are compared on equal terms (Fig. 5).
    """
    D = copy.deepcopy(D)
    device = next(D.parameters()).device
    bns = [m for m in D.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    D.train()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            D.features(_as_float(images[i:i + batch_size]).to(device))
    return D.eval()


@torch.no_grad()
def unit_responses(D: nn.Module, images, units, layer: int = -1, batch_size: int = 128,
                   progress: bool = False) -> torch.Tensor:
    """Each image's maximal (over positions) response of each unit of one D layer: N x len(units).

    "Axis-aligned": the response of one channel, not of a direction in feature space (Paper §6.2).
    """
    units = list(units)
    device = next(D.parameters()).device
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc="D responses", disable=not progress):
        f = D.features(_as_float(images[i:i + batch_size]).to(device))[layer]  # n x C x h x w
        out.append(f[:, units].flatten(2).amax(2).float().cpu())  # n x units
    return torch.cat(out)


def top_images(responses: torch.Tensor, k: int) -> torch.Tensor:
    """For each unit (column), the indices of the k images with the largest response: units x k."""
    return responses.topk(min(k, len(responses)), dim=0).indices.T


class _GuidedLeakyReLU(torch.autograd.Function):
    """LeakyReLU whose backward pass only lets positive gradients through (guided backprop)."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return F.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        local = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, ctx.slope))
        return grad.clamp(min=0) * local, None


def _guided_features(D: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """D's activations at `layer` with every LeakyReLU replaced by its guided version."""
    blocks = list(D.blocks)
    stop = layer % len(blocks)
    for block in blocks[:stop + 1]:
        for m in block:
            if isinstance(m, (nn.LeakyReLU, nn.ReLU)):
                slope = m.negative_slope if isinstance(m, nn.LeakyReLU) else 0.0
                x = _GuidedLeakyReLU.apply(x, slope)
            else:
                x = m(x)
    return x  # n x C x h x w


def guided_backprop(D: nn.Module, images, unit: int, layer: int = -1) -> torch.Tensor:
    """d(max response of `unit`)/d(image) with guided ReLUs (Springenberg et al. 2014; Paper Fig. 5).

    Returns N x 3 x H x W on the CPU. D should be in eval mode (see `calibrate_d`).
    """
    device = next(D.parameters()).device
    x = _as_float(images).to(device).clone().requires_grad_(True)
    f = _guided_features(D, x, layer)  # n x C x h x w
    f[:, unit].flatten(1).amax(1).sum().backward()  # gradient only at each image's argmax position
    return x.grad.detach().cpu()


def display_maps(grads: torch.Tensor, spread: float = 3.0) -> torch.Tensor:
    """Guided-backprop maps as images in [-1, 1]: centred per image, +-`spread` std -> +-1."""
    g = grads - grads.mean(dim=(1, 2, 3), keepdim=True)
    return (g / (spread * g.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12))).clamp(-1, 1)


def concentration(grads: torch.Tensor, top: float = 0.05) -> torch.Tensor:
    """Share of each map's |gradient| mass in its top `top` fraction of pixels (1 = all in one spot).

    A summary of how localised a unit's evidence is; uniform noise gives about `top`.
    """
    mass = grads.abs().sum(1).flatten(1)  # n x (H*W)
    k = max(1, int(round(top * mass.shape[1])))
    return mass.topk(k, dim=1).values.sum(1) / mass.sum(1).clamp_min(1e-12)


# ============================================================================ Fig. 6: windows
def window_layer(G: nn.Module) -> int:
    """Index in G.feature_maps of G's second-highest hidden conv layer (Paper §6.3.1).

    For the 64 px nets that is 16 x 16 x 256 at full width: the paper dropped "about 200" maps,
    more than the 128 of the highest hidden layer (32 x 32 x 128), so it cannot mean that one.
    """
    return len(G.blocks) - 2


@torch.no_grad()
def g_activations(G: nn.Module, z: torch.Tensor, layer: int, batch_size: int = 256) -> torch.Tensor:
    """G's activations at feature_maps[layer] for every z, on the CPU: N x C x h x w."""
    device = next(G.parameters()).device
    return torch.cat([G.feature_maps(z[i:i + batch_size].to(device))[layer].float().cpu()
                      for i in range(0, len(z), batch_size)])


@contextmanager
def drop_maps(G: nn.Module, layer: int, channels, recalibrate: Callable[[nn.Module], object] | None = None):
    """Within the block, G generates with the given feature maps of `layer` zeroed everywhere (§6.3.1).

    `recalibrate(G)` (e.g. `lambda g: store.calibrated(g, profile)`), called with the maps dropped, re-estimates G's
    BatchNorm statistics as the authors' G, whose BatchNorm always used batch statistics, renormalised every layer
    after the drop; without it, the layers above keep statistics of the undropped G and the whole image shifts in
    colour and contrast, not only its windows. G's statistics and mode are restored on exit.
    """
    if not 1 <= layer % (len(G.blocks) + 1) <= len(G.blocks) - 1:
        raise ValueError(f"layer {layer} is not a hidden conv layer of G (1..{len(G.blocks) - 1})")
    block = G.blocks[layer % (len(G.blocks) + 1) - 1]
    index = torch.as_tensor(list(channels), dtype=torch.long)

    def hook(_module, _inputs, output):
        output = output.clone()
        output[:, index.to(output.device)] = 0  # n x C x h x w, chosen maps off at all positions
        return output

    saved, training = {name: buf.clone() for name, buf in G.named_buffers()}, G.training  # BatchNorm statistics
    handle = block.register_forward_hook(hook)
    try:
        if recalibrate is not None:
            with torch.no_grad():
                recalibrate(G)
        yield G
    finally:
        handle.remove()
        with torch.no_grad():
            for name, buf in G.named_buffers():
                buf.copy_(saved[name])
        G.train(training)


def load_boxes(path: str | Path) -> dict:
    """Read a window-box file: {"boxes": [[sample, x0, y0, x1, y1], ...], "image_size", "n_samples", ...}."""
    record = json.loads(Path(path).read_text())
    for key in ("boxes", "image_size", "n_samples"):
        if key not in record:
            raise ValueError(f"{path}: missing {key!r}; draw boxes with dissect.BoxDrawer and save them")
    record["boxes"] = [[int(v) for v in b] for b in record["boxes"]]
    return record


def save_boxes(path: str | Path, boxes, image_size: int, n_samples: int, **meta) -> Path:
    """Write window boxes (pixel coordinates, x1/y1 exclusive) and their provenance as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({"image_size": image_size, "n_samples": n_samples, **meta}, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps([int(v) for v in b]) for b in boxes)  # one box per line
    path.write_text(head + ',\n "boxes": [\n' + rows + ("\n" if rows else "") + " ]\n}\n")
    return path


def box_mask(boxes, n: int, side: int, image_size: int) -> np.ndarray:
    """n x side x side bool: map cells whose centre lies inside a box of their sample."""
    mask = np.zeros((n, side, side), dtype=bool)
    centres = (np.arange(side) + 0.5) * image_size / side  # cell centres in image pixels
    for s, x0, y0, x1, y1 in boxes:
        if not 0 <= s < n:
            continue
        rows = (centres >= y0) & (centres < y1)
        cols = (centres >= x0) & (centres < x1)
        mask[s] |= rows[:, None] & cols[None, :]
    return mask


def box_dataset(maps: torch.Tensor, mask: np.ndarray, negatives: float = 1.0, seed: int = 0):
    """(X, y, sample) for the window classifier: every in-box location is positive; as many (x
    `negatives`) random locations outside boxes, from the same images, are negative (§6.3.1).
    """
    rng = np.random.default_rng(seed)
    a = maps.permute(0, 2, 3, 1).numpy()  # N x h x w x C
    xs, ys, ss = [], [], []
    for s in np.flatnonzero(mask.any((1, 2))):
        pos = np.argwhere(mask[s])
        neg = np.argwhere(~mask[s])
        k = min(len(neg), max(1, int(round(negatives * len(pos)))))
        neg = neg[rng.choice(len(neg), size=k, replace=False)]
        for cells, label in ((pos, 1), (neg, 0)):
            xs.append(a[s, cells[:, 0], cells[:, 1]])
            ys.append(np.full(len(cells), label))
            ss.append(np.full(len(cells), s))
    if not xs:
        raise ValueError("no boxes fall on these samples; check the box file against n_samples")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


def fit_window_classifier(X: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> LogisticRegression:
    """Logistic regression: is this activation vector on a window? (Paper §6.3.1)."""
    return LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(X, y)


def positive_maps(clf: LogisticRegression) -> list[int]:
    """The feature maps whose weight is > 0: the ones the paper drops (about 200 of them)."""
    return [int(i) for i in np.flatnonzero(clf.coef_[0] > 0)]


def heldout_auc(X: np.ndarray, y: np.ndarray, sample: np.ndarray, C: float = 1.0) -> float:
    """ROC AUC of the classifier fit on half the boxed samples and scored on the other half."""
    ids = np.unique(sample)
    test = np.isin(sample, ids[1::2])
    if len(ids) < 2 or len(np.unique(y[~test])) < 2 or len(np.unique(y[test])) < 2:
        return float("nan")
    clf = fit_window_classifier(X[~test], y[~test], C)
    return float(roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1]))


def window_probability(clf: LogisticRegression, maps: torch.Tensor) -> np.ndarray:
    """P(window) at every location of N x C x h x w maps: N x h x w."""
    n, c, h, w = maps.shape
    p = clf.predict_proba(maps.permute(0, 2, 3, 1).reshape(-1, c).numpy())[:, 1]
    return p.reshape(n, h, w)


def window_scores(clf: LogisticRegression, maps: torch.Tensor, mask: np.ndarray) -> dict[str, float]:
    """Mean P(window) inside the boxes and outside them, over the boxed samples."""
    p = window_probability(clf, maps)
    boxed = mask.any((1, 2))
    inside, outside = p[mask], p[boxed][~mask[boxed]]
    return {"inside": float(inside.mean()), "outside": float(outside.mean())}


def pixel_change(before: torch.Tensor, after: torch.Tensor, mask: np.ndarray) -> dict[str, float]:
    """Mean |after - before| per pixel inside and outside the boxes (mask at image resolution)."""
    diff = (after - before).abs().mean(1).numpy()  # N x H x W
    boxed = mask.any((1, 2))
    return {"inside": float(diff[mask].mean()), "outside": float(diff[boxed][~mask[boxed]].mean())}


class BoxDrawer:
    """Draw window boxes on a numbered grid of samples with the mouse; `save` writes the JSON (§6.3.1).

    Needs an interactive matplotlib backend (`%matplotlib widget` with ipympl, or qt/tk).
    Drag a rectangle over a window; it is assigned to the sample under its centre and clipped
    to that sample. `undo()` removes the last box.
    """

    def __init__(self, images: np.ndarray, cols: int = 10, pad: int = 2, boxes=None, figsize: float = 12):
        self.images, self.cols, self.pad = images, cols, pad
        self.size = images.shape[1]
        self.boxes: list[list[int]] = [list(b) for b in (boxes or [])]
        self.fig, self.ax = plt.subplots(figsize=(figsize, figsize * len(images) / cols / cols))
        self.ax.imshow(image_grid(images, cols, pad))
        for i in range(len(images)):
            x, y = self.origin(i)
            self.ax.text(x + 1, y + 5, str(i), color="yellow", fontsize=6)
        self.ax.set_axis_off()
        self._patches = []
        for b in self.boxes:
            self._draw(b)
        self.selector = RectangleSelector(self.ax, self.on_select, useblit=False, interactive=False)

    def origin(self, i: int) -> tuple[int, int]:
        """Top-left grid pixel of sample i."""
        r, c = divmod(i, self.cols)
        step = self.size + self.pad
        return self.pad + c * step, self.pad + r * step

    def on_select(self, press, release) -> list[int] | None:
        """Mouse callback: turn a dragged rectangle (grid coordinates) into a sample box."""
        x0, x1 = sorted((press.xdata, release.xdata))
        y0, y1 = sorted((press.ydata, release.ydata))
        step = self.size + self.pad
        c, r = int(((x0 + x1) / 2 - self.pad) // step), int(((y0 + y1) / 2 - self.pad) // step)
        i = r * self.cols + c
        if not (0 <= c < self.cols and 0 <= i < len(self.images)):
            return None
        ox, oy = self.origin(i)
        corners = ((x0, ox), (y0, oy), (x1, ox), (y1, oy))
        box = [i, *(int(round(min(max(v - o, 0), self.size))) for v, o in corners)]  # clipped to sample i
        if box[3] <= box[1] or box[4] <= box[2]:
            return None
        self.boxes.append(box)
        self._draw(box)
        return box

    def _draw(self, box) -> None:
        ox, oy = self.origin(box[0])
        patch = Rectangle((ox + box[1] - 0.5, oy + box[2] - 0.5), box[3] - box[1], box[4] - box[2],
                          fill=False, edgecolor="red", linewidth=1)
        self._patches.append(self.ax.add_patch(patch))
        self.fig.canvas.draw_idle()

    def undo(self) -> None:
        """Remove the last box."""
        if self.boxes:
            self.boxes.pop()
            self._patches.pop().remove()
            self.fig.canvas.draw_idle()

    def save(self, path: str | Path, **meta) -> Path:
        """Write the boxes with `save_boxes` (add model / seed provenance in meta)."""
        return save_boxes(path, self.boxes, self.size, len(self.images), **meta)
