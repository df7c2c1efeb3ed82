"""The machine's own limit: FLOPs counted from the nets, measured GEMM and conv throughput,
and where one training step's time goes.

A ratio to a slow reference says little once a loop is compute-bound (Paper §3's nets at the paper's
widths are). So the bench also reports the fraction of what this machine can compute at all: the FLOPs
of one real D + G step (forward and backward, counted by torch's FlopCounterMode, never typed in),
times steps per second, against the measured throughput of a dense GEMM and of the nets' own
largest convolutions (forward + backward), in the same dtype.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from dcgan_lib.gan import nets

PROFILE_GROUPS = ("convolutions", "BatchNorm", "optimizer", "data", "other ops", "Python/other")


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call of fn, counted by torch.utils.flop_counter (matmuls and convs, forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_rate(fn: Callable[[], object], flops: float, device: torch.device, seconds: float = 1.0,
              chunks: int = 3) -> float:
    """FLOP/s of fn: one warm-up call, then `chunks` timed chunks of seconds / chunks each; the best chunk
    is reported (a machine's limit is what it reaches when other jobs leave it alone)."""
    fn()
    _sync(device)
    rates = []
    for _ in range(chunks):
        start, n = time.perf_counter(), 0
        while n == 0 or time.perf_counter() - start < seconds / chunks:
            fn()
            n += 1
        _sync(device)
        rates.append(flops * n / (time.perf_counter() - start))
    return max(rates)


def gemm_throughput(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                    seconds: float = 1.0) -> dict:
    """Measured dense n x n x n matmul throughput in FLOP/s. n: up to 2048 on a CPU, 8192 on a GPU, halved
    while one product would take more than a quarter of `seconds` (bf16 emulated on a CPU without AMX is
    ~100x slower than fp32: a fixed n would take minutes there)."""
    n = n or _gemm_size(device, dtype, 8192 if device.type == "cuda" else 2048, seconds / 4)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)
    flops = count_flops(lambda: torch.mm(a, b))
    rate = best_rate(lambda: torch.mm(a, b, out=out), flops, device, seconds)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "flop_per_s": rate}


def _gemm_size(device: torch.device, dtype: torch.dtype, largest: int, budget_s: float) -> int:
    """The largest power-of-two n <= largest whose n x n matmul takes at most budget_s (at least 128)."""
    n = 128
    while n < largest:
        a = torch.ones(n, n, device=device, dtype=dtype)
        start = time.perf_counter()
        torch.mm(a, a)
        _sync(device)
        if (time.perf_counter() - start) * 8 > budget_s:  # doubling n costs 8x
            break
        n *= 2
    return n


def conv_layers(net_cfg: nets.NetConfig, batch: int) -> list[dict]:
    """Every conv of G and D with its input shape at this batch size (one forward pass with hooks)."""
    g, d = nets.build(net_cfg, seed=0)
    found: list[dict] = []

    def hook(net: str):
        def record(module, inputs, _output):
            found.append({"net": net, "module": module, "input_shape": tuple(inputs[0].shape)})
        return record

    handles = [m.register_forward_hook(hook(name)) for name, model in (("G", g), ("D", d))
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        d(g(net_cfg.sample_z(batch)))
    for h in handles:
        h.remove()
    return found


def _describe(layer: dict) -> str:
    m = layer["module"]
    kind = "ConvTranspose2d" if isinstance(m, nn.ConvTranspose2d) else "Conv2d"
    side = layer["input_shape"][-1]
    return (f"{layer['net']} {kind} {m.in_channels}->{m.out_channels} k{m.kernel_size[0]} s{m.stride[0]} "
            f"on {side}x{side}")


def conv_throughput(net_cfg: nets.NetConfig, batch: int, device: torch.device, dtype: torch.dtype = torch.float32,
                    seconds: float = 1.0) -> dict:
    """Measured forward + backward (input and weight gradients) throughput of the nets' largest conv of D
    and largest transposed conv of G, at the bench's batch, in both memory layouts; FLOPs counted, not typed."""
    layers = conv_layers(net_cfg, batch)
    picked = []
    for net in ("D", "G"):
        mine = [x for x in layers if x["net"] == net]
        picked.append(max(mine, key=lambda x: count_flops(lambda x=x: x["module"](torch.zeros(x["input_shape"])))))
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for layer in picked:
        for fmt_name, fmt in (("channels_last", torch.channels_last), ("NCHW", torch.contiguous_format)):
            m = layer["module"].to(device=device, dtype=dtype, memory_format=fmt)
            x = torch.randn(layer["input_shape"], generator=gen).to(device, dtype).contiguous(memory_format=fmt)
            x.requires_grad_(True)
            grad = torch.randn_like(m(x)).contiguous(memory_format=fmt)

            def step(m=m, x=x, grad=grad):
                m.zero_grad(set_to_none=True)
                x.grad = None
                m(x).backward(grad)

            flops = count_flops(step)
            rows.append({"layer": _describe(layer), "layout": fmt_name, "flops": flops,
                         "flop_per_s": best_rate(step, flops, device, seconds / len(picked) / 2)})
    return {"dtype": str(dtype).removeprefix("torch."), "batch": batch, "layers": rows,
            "flop_per_s": max(r["flop_per_s"] for r in rows)}


# ---- where the time goes ------------------------------------------------------------------------

def _group(event, ancestors: list[str]) -> str:
    names = [*ancestors, event.name]
    if "data" in names:
        return "data"
    if any(a.startswith("Optimizer.") for a in names):
        return "optimizer"
    name = event.name.lower()
    if "conv" in name:
        return "convolutions"
    if "batch_norm" in name or "batchnorm" in name:
        return "BatchNorm"
    return "other ops"


def time_breakdown(step: Callable[[], object], steps: int = 3, data_fn: tuple[object, str] | None = None,
                   device: torch.device | None = None) -> dict:
    """torch.profiler summary of `steps` calls of step(), grouped: convolutions, BatchNorm, optimizer, data,
    other ops, and Python/other (wall time no op accounts for). data_fn = (object, method name) wraps that
    method in a 'data' range for the profile (e.g. the Trainer's _batch). On a CUDA device the groups are
    of GPU kernel time (Python/other is then time the GPU sat idle)."""
    from torch.autograd import DeviceType
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    cuda = device is not None and device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    time_of = "self_device_time_total" if cuda else "self_cpu_time_total"
    step()  # warm
    owner, attr = data_fn if data_fn else (None, None)
    if owner is not None:
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            with record_function("data"):
                return original(*args, **kwargs)
        setattr(owner, attr, wrapped)
    try:
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                step()
            if cuda:
                torch.cuda.synchronize(device)
            wall = time.perf_counter() - start
    finally:
        if owner is not None:
            delattr(owner, attr)  # back to the class's method
    totals = dict.fromkeys(PROFILE_GROUPS, 0.0)

    def visit(event, ancestors):
        totals[_group(event, ancestors)] += getattr(event, time_of) / 1e6
        for child in event.cpu_children:
            visit(child, [*ancestors, event.name])

    for event in prof.events():  # CPU ops; on CUDA their self device time holds the kernels they launched
        if event.cpu_parent is None and event.device_type == DeviceType.CPU:
            visit(event, [])
    totals["Python/other"] = max(wall - sum(totals.values()), 0.0)
    per_step = {k: v / steps for k, v in totals.items()}
    return {"step_s": wall / steps, "seconds_per_step": {k: round(v, 6) for k, v in per_step.items()},
            "fraction": {k: round(v / (wall / steps), 4) for k, v in per_step.items()},
            "timed": "GPU kernel time" if cuda else "CPU self time",
            "note": "self time of the ops of each group, under the profiler (which adds overhead); "
                    "Python/other: wall time that no op accounts for"}
