"""The course map: which notebook rebuilds which part of the paper, the data it reads and the models it trains
(README, notebook 00, the Colab cells and scripts/gpu_run.sh read it); running a notebook without Jupyter
(`run_as_script`, for machines without papermill); and the training-time estimate of a profile on a GPU
(`training_estimate`), from a measured GPU check and each model's FLOPs.
"""
from __future__ import annotations

import json
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Lesson:
    """One notebook: its file stem, the paper section it rebuilds, and what it makes.

    `data`: the datasets it reads outside the paper profile (the Colab cell fetches them); `models`: the
    (dataset, variant) pairs it trains when the model store lacks them, datasets named as in the paper
    (a profile's `dataset()` turns them into the ones it trains on).
    """

    stem: str
    paper: str
    makes: str
    data: tuple[str, ...] = ()
    models: tuple[tuple[str, str], ...] = ()


LESSONS = (
    Lesson("00_course_map", "all", "this map; checks the environment and the data"),
    Lesson("01_architecture", "§3, Fig. 1", "builds every G and D variant, checks the 5 guidelines, draws Fig. 1"),
    Lesson("02_dedup_autoencoder", "§4.1", "the 3072-128-3072 semantic hash; precision/recall on planted duplicates",
           data=("cifar10", "tiny_imagenet", "bedrooms")),
    Lesson("03_train_bedrooms", "§4.1, Figs. 2-3", "bedroom samples after 1 epoch and after 5; memorisation check",
           data=("bedrooms",), models=(("lsun_bedroom", "lsun64"),)),
    Lesson("04_train_faces", "§4.2", "OpenCV face detection -> crops -> the faces DCGAN",
           data=("lfw", "celeba"), models=(("celeba", "faces64"),)),
    Lesson("05_train_imagenet", "§4.3", "the 32 px ImageNet model behind Table 1",
           data=("tiny_imagenet",), models=(("imagenet", "imagenet32"),)),
    Lesson("06_cifar10_probe", "§5.1, Table 1", "28,672 D features + L2-SVM on CIFAR-10, beside the paper's table",
           data=("cifar10", "tiny_imagenet", "authors_imagenet32"), models=(("cifar10", "imagenet32"),)),
    Lesson("07_svhn_probe", "§5.2, Table 2", "1000-label SVHN protocol, supervised baseline, beside the paper's table",
           data=("svhn", "authors_svhn"), models=(("svhn", "svhn32"),)),
    Lesson("08_latent_walk", "§6.1, Fig. 4", "interpolations between 9 points in Z, smoothness measured",
           data=("bedrooms",)),
    Lesson("09_guided_backprop", "§6.2, Fig. 5", "guided backprop of D's last conv features, trained vs random D",
           data=("bedrooms",)),
    Lesson("10_forgetting_windows", "§6.3.1, Fig. 6", "window boxes -> logistic regression -> dropped G feature maps",
           data=("bedrooms",)),
    Lesson("11_vector_arithmetic", "§6.3.2, Fig. 7", "concept averages, +-0.25 noise, pixel-space contrast",
           data=("celeba", "celeba_attributes")),
    Lesson("12_face_pose", "Fig. 8", "the turn vector", data=("celeba",)),
)


def lesson(stem_or_number: str) -> Lesson:
    """The lesson with this stem or number ("03", "3" or "03_train_bedrooms")."""
    for item in LESSONS:
        if stem_or_number == item.stem or item.stem.split("_")[0] == str(stem_or_number).zfill(2):
            return item
    raise ValueError(f"no notebook {stem_or_number}; the course has {', '.join(x.stem for x in LESSONS)}")


def notebook_path(stem: str) -> Path:
    from dcgan_lib.records.results import ROOT  # deferred: results imports torch

    return ROOT / "notebooks" / f"{stem}.ipynb"


# ---- running a notebook without Jupyter ---------------------------------------------------------------

def _ipython_display_stand_in() -> types.ModuleType:
    """A minimal IPython.display where IPython is not installed: display() prints, Markdown/Image hold data."""
    module = types.ModuleType("IPython.display")

    class _Shown:
        def __init__(self, data=None, **kwargs):
            self.data = data

        def __repr__(self) -> str:
            return str(self.data)

    module.Markdown, module.Image = type("Markdown", (_Shown,), {}), type("Image", (_Shown,), {})
    module.display = lambda *objs, **kwargs: [print(o) for o in objs] and None
    return module


def code_cells(stem: str) -> list[tuple[list[str], str]]:
    """(tags, source) of every code cell of a notebook, read as plain JSON (no Jupyter needed)."""
    nb = json.loads(notebook_path(stem).read_text())
    return [(cell.get("metadata", {}).get("tags", []),
             "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
            for cell in nb["cells"] if cell["cell_type"] == "code"]


def run_as_script(stem: str, parameters: dict | None = None) -> dict:
    """Execute a notebook's code cells in order in one namespace, `parameters` set right after the cell tagged
    `parameters` (as papermill injects them); returns the namespace. For machines without papermill and
    Jupyter (a lent GPU's image): the figures and records the notebook writes are the same, only no executed
    notebook is kept. A cell's error is raised with the cell's number."""
    import matplotlib

    matplotlib.use("Agg")
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        sys.modules.setdefault("IPython", types.ModuleType("IPython"))
        sys.modules["IPython.display"] = _ipython_display_stand_in()
    namespace: dict = {"__name__": "__main__"}
    for number, (tags, source) in enumerate(code_cells(stem)):
        try:
            exec(compile(source, f"{stem}.ipynb[code cell {number}]", "exec"), namespace)  # noqa: S102
        except Exception as err:
            raise RuntimeError(f"{stem}: code cell {number} failed: {type(err).__name__}: {err}") from err
        if "parameters" in tags and parameters:
            namespace.update(parameters)
    return namespace


# ---- what training a profile costs on a GPU (an estimate until measured there) -------------------------

@dataclass(frozen=True)
class Throughput:
    """A GPU's training speed model: seconds per step = overhead_s + step FLOPs / flop_per_s."""

    name: str
    overhead_s: float  # per step: Python and kernel launches, which do not shrink with the work
    flop_per_s: float  # convolution and matmul FLOPs per second reached by the step's kernels
    source: str

    def step_s(self, step_flops: float) -> float:
        return self.overhead_s + step_flops / self.flop_per_s


def throughput_from_gpu_check(record: dict) -> Throughput:
    """The model of the GPU a `bench gpu-check` record measured: its fp32 images/s at its batch, the step's
    counted FLOPs, and the Python/other share of its profiled step as the overhead."""
    m = record["metrics"]
    limits = m["training"]["limits"]
    step_s = m["batch_size"] / m["ours_fp32_images_per_s"]
    overhead = limits["profile"]["fraction"]["Python/other"] * step_s
    return Throughput(m["gpu"], overhead, limits["step_flops"]["ours"] / (step_s - overhead),
                      f"bench gpu-check, commit {str(record.get('commit'))[:10]}")


# Data-sheet fp32 peak of an NVIDIA T4 (Colab's free GPU; no tensor-core TF32 on Turing) and the share of it
# assumed reached by the nets' convolutions: an ASSUMPTION (no T4 has been measured here), to be replaced
# by a T4's own `bench gpu-check` record.
T4_FP32_FLOP_PER_S = 8.1e12
T4_ASSUMED_FRACTION = 0.5


def t4_from(measured: Throughput) -> Throughput:
    """A T4's model: the measured GPU's per-step overhead, and T4_ASSUMED_FRACTION of the T4's fp32 peak."""
    return Throughput("Tesla T4 (estimate)", measured.overhead_s, T4_FP32_FLOP_PER_S * T4_ASSUMED_FRACTION,
                      f"overhead of {measured.name}; {T4_ASSUMED_FRACTION:.0%} of the T4's fp32 data-sheet peak")


def flops_per_image(variant: str, width: float, image_size: int | None = None, kernel: int | None = None) -> float:
    """FLOPs of one training step per image (D step + G step, forward and backward: torch's counter), counted
    on a real Trainer step at batch 2 on the CPU."""
    from dcgan_lib.bench import flops
    from dcgan_lib.gan import nets
    from dcgan_lib.gan.train import Trainer
    from dcgan_lib.gan.train_config import TrainConfig

    size = image_size or nets.get_config(variant).image_size
    with tempfile.TemporaryDirectory(prefix="dcgan_flops_") as tmp:
        trainer = Trainer(TrainConfig(variant=variant, width=width, kernel=kernel, batch_size=2, amp=False,
                                      image_size=image_size),
                          np.zeros((2, size, size, 3), np.uint8), tmp, device="cpu", progress=False)
        return flops.count_flops(trainer.train_step) / 2


def training_estimate(profile, throughputs: list[Throughput], counts: dict[str, int]) -> dict:
    """Seconds of training each lesson's models take at `profile` on each GPU model: steps from the model
    store's plan (store.plan, the profile's epochs and caps) for `counts[dataset]` training images, times
    the model's step time. Training only: FID, probes, face detection and plotting come on top."""
    from dcgan_lib.config import profiles
    from dcgan_lib.models import store

    prof = profiles.get_profile(profile)
    rows = []
    for item in LESSONS:
        for paper_name, variant in item.models:
            dataset = prof.dataset(paper_name)
            n = counts[dataset] if prof.images_of(dataset) is None else min(counts[dataset], prof.images_of(dataset))
            cfg = store.plan(dataset, variant, prof, n)
            step_flops = flops_per_image(variant, cfg.width, kernel=cfg.kernel) * cfg.batch_size
            rows.append({"lesson": item.stem, "dataset": dataset, "variant": variant, "images": n,
                         "batch_size": cfg.batch_size, "steps": cfg.steps, "epochs": prof.epochs_of(dataset, variant),
                         "gflop_per_step": round(step_flops / 1e9, 1),
                         "seconds": {t.name: round(cfg.steps * t.step_s(step_flops), 1) for t in throughputs}})
    totals = {t.name: round(sum(r["seconds"][t.name] for r in rows), 1) for t in throughputs}
    return {"profile": prof.name, "models": rows, "total_s": totals,
            "throughputs": [t.__dict__ for t in throughputs],
            "note": "training only, estimated from FLOPs and a throughput model; measure on the GPU to replace it"}
