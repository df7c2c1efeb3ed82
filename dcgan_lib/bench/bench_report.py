"""What the two benchmarks add up to: the one-command GPU check and the bench.md table.

Both sit above dcgan_lib.bench.bench (training speed) and dcgan_lib.bench.bench_probe (probe speed) and combine
them: `gpu_check` runs both on a GPU into ONE record a short device lease can bring back, and
`write_table` turns every bench_*.json record in a folder into the markdown page the README links.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from dcgan_lib.bench import flops
from dcgan_lib.bench.bench import TARGETS, bf16_peak, paired_ratio, training_metrics
from dcgan_lib.bench.bench_loops import ABLATION_MEANING, BenchConfig, compile_modes, compile_name, compile_row
from dcgan_lib.bench.bench_probe import ProbeBenchConfig, bench_probe
from dcgan_lib.config.device import get_device
from dcgan_lib.records import results

# ---- the one-command GPU check ------------------------------------------------------------------

def gpu_check(cfg: BenchConfig, probe: ProbeBenchConfig | None, profile: str, device: torch.device | None = None,
              out_dir: Path | None = None, progress: bool = True) -> Path:
    """Everything a GPU should show, in one call and one record (bench_gpu_check_<device>.json): lsun64 at
    batch 128 (ours fp32 and bf16 against the reference in the same run), the fraction of the GPU's bf16
    peak (data-sheet table) and of a measured bf16 matmul, `cfg.quality_steps` paper-profile steps in fp32
    and bf16 compared curve by curve, each torch.compile mode of `cfg` (speed row, curves and KID after the
    same steps as fp32), and the probe timing. On a CPU it runs as its CI smoke test."""
    device = device or get_device()
    with results.stopwatch() as wall:
        metrics, context = training_metrics(dataclasses.replace(cfg, quality_always=True), device, progress)
        probe_metrics = None
        if probe is not None:
            with tempfile.TemporaryDirectory(prefix="dcgan_gpu_check_") as tmp:
                try:
                    probe_metrics = results.read_record(bench_probe(probe, profile, device, Path(tmp)))["metrics"]
                except (RuntimeError, ValueError, FileNotFoundError, OSError) as err:  # keep the training numbers
                    probe_metrics = {"error": f"{type(err).__name__}: {err}"}
    limits = metrics["limits"] or {}
    bf16, peak = metrics["bf16"], bf16_peak(device)
    step_flops_image = limits["step_flops"]["ours"] / cfg.batch_size if limits else None
    best_rate = bf16.get("images_per_s") if bf16["used"] else metrics["ours_images_per_s"]
    achieved = None if step_flops_image is None else step_flops_image * best_rate
    matmul = (limits.get("bf16") or {}).get("gemm_gflop_per_s")
    summary = {
        "gpu": results.device_name(device), "batch_size": cfg.batch_size, "width": cfg.width,
        "ours_fp32_images_per_s": metrics["ours_images_per_s"], "ours_bf16_images_per_s": bf16.get("images_per_s"),
        "reference_images_per_s": metrics["reference_images_per_s"],
        "ratio_fp32": metrics["ratio"], "ratio_bf16": bf16.get("ratio_to_reference"),
        "bf16_quality_passed": (bf16.get("quality") or {}).get("passed"),
        "bf16_peak_tflops": None if peak is None else peak / 1e12,
        "fraction_of_bf16_peak": None if peak is None or achieved is None else round(achieved / peak, 4),
        "measured_bf16_matmul_tflops": None if matmul is None else round(matmul / 1e3, 1),
        "fraction_of_measured_bf16_matmul": None if not matmul or achieved is None else round(achieved / 1e9 / matmul,
                                                                                              4),
        "probe": probe_metrics,
        "fid": (bf16.get("quality") or {}).get("fid"),
        "compile": compile_summary(cfg, metrics),
        "targets": metrics["targets"],
    }
    return results.write_record(
        f"bench_gpu_check_{device.type}", name="GPU check: lsun64 speed, bf16 quality, probe timing",
        profile=profile, metrics={**summary, "training": metrics}, out_dir=out_dir, device=device, seed=cfg.seed,
        paper={"note": "the paper reports no training speed", "batch_size": 128},
        **{**context, "wall_s": wall()})


def compile_summary(cfg: BenchConfig, metrics: dict) -> dict:
    """Per torch.compile mode timed: images/s, its speed-up over ours fp32 (paired per round), the seconds of
    its first steps, whether its training curves stay within the seed-to-seed spread of fp32's, and its KID
    after the same steps as the fp32 run (when samples were scored)."""
    quality = metrics["bf16"].get("quality") or {}
    scored = (quality.get("fid") or {}).get("by_run") or {}
    out = {}
    for mode in compile_modes(cfg):
        row, name = compile_row(mode), compile_name(mode)
        curves = (quality.get("compiled") or {}).get(name)
        out[mode] = {"images_per_s": metrics["ablation_images_per_s"].get(row),
                     "ratio_to_ours_fp32": metrics["speedups"].get(name),
                     "first_steps_s": (metrics.get("compile_first_steps_s") or {}).get(row),
                     "curves_within_tolerance": None if curves is None else curves["passed"],
                     "kid": (scored.get(name) or {}).get("kid"), "kid_fp32": (scored.get("fp32") or {}).get("kid"),
                     "kid_fp32_seed_plus_1": (scored.get("fp32, seed + 1") or {}).get("kid")}
    return out


# ---- the README table ---------------------------------------------------------------------------

def _spread_note(spread: float | None) -> str:
    if spread is None:
        return ""
    return f"{spread:.2f}" + (" (noisy: the machine was busy; rerun when it is quiet)" if spread > 2 else "")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _yes(x: bool | None) -> str:
    return "—" if x is None else ("yes" if x else "no")


def _gpu_check_fid(m: dict, out_dir: Path) -> list[str]:
    """FID/KID of the GPU check's fp32 and bf16 quality runs: in its record, or in the fid_samples records of
    its saved samples (scored here where the device machine had no FID Inception weights)."""
    fid = m.get("fid") or {}
    scores = fid.get("by_run") or {}
    if "files" in fid:
        for run, name in fid["files"].items():
            path = out_dir / f"fid_samples_{Path(name).stem}.json"
            if path.exists():
                scores[run] = results.read_record(path)["metrics"]
    if not scores:
        return []
    steps = m["training"]["bf16"]["quality"]["steps"]
    runs = "; ".join(f"{run}: FID {v['fid']:.1f}, KID {v['kid']:.4f} ± {v['kid_std']:.4f}" for run, v in scores.items())
    return ["", f"Quality after {steps} steps from one seed ({fid.get('n')} samples each, against real bedrooms): "
            f"{runs}. The two fp32 seeds show how far runs that differ only by chance fall apart."]


def _compile_lines(m: dict) -> list[str]:
    """The GPU check's torch.compile rows: speed beside ours fp32 and quality after equal steps."""
    rows = []
    for mode, c in (m.get("compile") or {}).items():
        if c["images_per_s"] is None:
            continue
        kid = "" if c["kid"] is None else (f"; KID {c['kid']:.4f} (fp32 {c['kid_fp32']:.4f}, fp32 from another "
                                           f"seed {c['kid_fp32_seed_plus_1']:.4f})")
        curves = {None: "curves not compared", True: "curves within tolerance", False: "curves OUTSIDE tolerance"}
        rows.append(f"{mode}{' (CUDA graphs)' if mode == 'reduce-overhead' else ''}: {c['images_per_s']:,.1f} "
                    f"images/s, {c['ratio_to_ours_fp32']:.2f}x ours fp32, first steps {c['first_steps_s']} s; "
                    f"{curves[c['curves_within_tolerance']]}{kid}")
    if not rows:
        return []
    steps = (m["training"]["bf16"].get("quality") or {}).get("steps")
    return ["", f"torch.compile in the same run (fp32; quality after the same {steps} steps as fp32): "
            + "; ".join(rows) + "."]


def write_table(out_dir: Path) -> Path:
    """bench.md from every bench_*.json record in out_dir: equal-numerics ratios, machine-limit fractions,
    the bf16 row, the ablations, where the time goes, the probe and the GPU check."""
    recs = [{**results.read_record(p), "_file": p.name} for p in sorted(Path(out_dir).glob("bench_*.json"))]
    train_recs = [r for r in recs if "ours_images_per_s" in r["metrics"] and "numerics" in r["metrics"]]
    old = [r for r in recs if "ours_images_per_s" in r["metrics"] and "numerics" not in r["metrics"]]
    gpu_checks = [r for r in recs if r["name"].startswith("GPU check")]
    lines = ["# Speed", "", "Generated by `python -m dcgan_lib bench` from the JSON records beside "
             "this file. Images/s: medians of interleaved timed windows, warm-up excluded; ratios: medians of "
             "the per-round ratios (windows of one round run back to back).", "",
             "## Equal numerics: our fp32 trainer against the fp32 reference", "",
             "| variant | width | batch | device | threads | load avg | ours fp32 img/s | reference fp32 img/s "
             "| ratio | target | met | window spread |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in train_recs:
        m, c, t = r["metrics"], r["bench_config"], r["metrics"]["targets"]
        goal = f">= {t['cpu_ratio']}x" if "cpu_ratio" in t else f">= {t['gpu_images_per_s']:,} img/s, {t['gpu_ratio']}x"
        met = t.get("ratio_met", t["met"])
        lines.append(f"| {c['variant']} | {c['width']:g} | {c['batch_size']} | {r['device']} | {r.get('threads')} "
                     f"| {r.get('load_average_before')} | {m['ours_images_per_s']:,.1f} "
                     f"| {m['reference_images_per_s']:,.1f} | {m['ratio']:.2f}x | {goal} "
                     f"| {_yes(met)} | {_spread_note(m.get('spread'))} |")
    limited = [r for r in train_recs if r["metrics"].get("limits")]
    if limited:
        lines += ["", "## Against the machine's own limit (fp32)", "",
                  "Step FLOPs counted by torch's FlopCounterMode over one real D + G step (forward + backward); "
                  "achieved = FLOPs per image x images/s. Conv: the measured forward + backward throughput of "
                  "the nets' largest D conv and G transposed conv at this batch (best layout); GEMM: a measured "
                  "dense fp32 matmul.", "",
                  "| variant | width | GFLOP/img ours (reference) | achieved GFLOP/s | conv GFLOP/s | of conv "
                  "| target | met | GEMM GFLOP/s | of GEMM | reference: of conv |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in limited:
            m, c, lim = r["metrics"], r["bench_config"], r["metrics"]["limits"]
            f = lim["fp32"]
            lines.append(f"| {c['variant']} | {c['width']:g} | {lim['train_gflop_per_image']:.2f} "
                         f"({lim['reference_gflop_per_image']:.2f}) | {f['achieved_gflop_per_s']:,.1f} "
                         f"| {f['conv_gflop_per_s']:,.1f} | {_pct(f['fraction_of_conv'])} "
                         f"| >= {_pct(m['targets'].get('cpu_conv_fraction'))} "
                         f"| {_yes(m['targets'].get('conv_fraction_met'))} | {f['gemm_gflop_per_s']:,.1f} "
                         f"| {_pct(f['fraction_of_gemm'])} | {_pct(f['reference_fraction_of_conv'])} |")
        lines += ["", "Where one step of ours (fp32) goes (torch.profiler, self time of the ops of each group; "
                  "Python/other: wall time no op accounts for):", "",
                  "| variant | width | s/step | " + " | ".join(flops.PROFILE_GROUPS) + " |",
                  "|---|---|---|" + "---|" * len(flops.PROFILE_GROUPS)]
        for r in limited:
            p, c = r["metrics"]["limits"]["profile"], r["bench_config"]
            lines.append(f"| {c['variant']} | {c['width']:g} | {p['step_s']:.3f} | "
                         + " | ".join(_pct(p["fraction"][g]) for g in flops.PROFILE_GROUPS) + " |")
    if train_recs:
        lines += ["", "## bf16 (NOT equal numerics)", ""]
        for r in train_recs:
            b, c = r["metrics"]["bf16"], r["bench_config"]
            head = f"- {c['variant']}, width {c['width']:g}, {r['device']}: "
            if not b["used"]:
                lines.append(head + b.get("reason", "not timed"))
                continue
            q = b.get("quality")
            verdict = ("training curves not compared" if q is None else
                       f"curves over {q['steps']} steps {'within' if q['passed'] else 'OUTSIDE'} tolerance")
            lines.append(head + f"{b['images_per_s']:,.1f} img/s, {b['ratio_to_ours_fp32']:.2f}x ours fp32, "
                         f"{b['ratio_to_reference']:.2f}x the reference; {verdict}"
                         + ("" if b["shown_as_win"] else ": not counted as a win"))
        names = list(dict.fromkeys(k for r in train_recs for k in r["metrics"]["ablation_images_per_s"]))
        lines += ["", "## Ablations (fp32, equal numerics)", "",
                  "Images/s of the Trainer with one fast-path choice switched off, timed in the same interleaved "
                  "rounds; in brackets: ours over it (paired per round). 'all choices off' should match the "
                  "reference (the same work).", "",
                  "| variant | width | threads | ours | " + " | ".join(names) + " |",
                  "|---|---|---|---|" + "---|" * len(names)]
        for r in train_recs:
            m, c = r["metrics"], r["bench_config"]
            w = m["windows_images_per_s"]
            cells = [f"{m['ablation_images_per_s'][k]:,.1f} ({paired_ratio(w['ours'], w[k]):.2f}x)"
                     if k in m["ablation_images_per_s"] else "" for k in names]
            lines.append(f"| {c['variant']} | {c['width']:g} | {r.get('threads')} | {m['ours_images_per_s']:,.1f} | "
                         + " | ".join(cells) + " |")
        meaning = {**ABLATION_MEANING, **(train_recs[0].get("ablation_meaning") or {})}
        lines += ["", "Switched off means: " + "; ".join(f"{k}: {v}" for k, v in meaning.items()) + "."]
        lines += ["", "Conditions:", ""]
        for r in train_recs:
            h, c = r.get("host") or {}, r["bench_config"]
            lines.append(f"- {c['variant']} width {c['width']:g}: {r.get('threads')} torch thread(s) on "
                         f"{h.get('cpu_count')} cores ({h.get('cpu_model')}, AMX bf16: {h.get('cpu_amx_bf16')}); "
                         f"load average {r.get('load_average_before')} before, {r.get('load_average_after')} "
                         f"after (CPU pressure {_pct(r.get('cpu_pressure_after'))}: time some task waited for a "
                         f"core); {c['n_files']:,} {r['data'].get('dataset')} files; the reference's DataLoader "
                         f"had {c['workers']} worker process(es) besides; {c['windows']} windows of "
                         f"{c['seconds'] / c['windows']:g} s per loop.")
    for r in recs:
        if "features_plus_svm_s" in r["metrics"]:
            m = r["metrics"]
            lines += ["", f"Probe pipeline ({r['device']}): features of {m['images_featurised']:,} CIFAR-10 images "
                      f"({m['feature_dim']:,} dims) in {m['features_s']} s, one L2-SVM fit ({m['svm_solver']}) on "
                      f"{m['svm_train_images']:,} images in {m['svm_fit_s']} s: {m['features_plus_svm_s']} s in all "
                      f"(target {m['targets']['seconds']} s: {'met' if m['targets']['met'] else 'not met'}). "
                      + ("" if m["reference_svm_fit_s"] is None else
                         f"The same fit with sklearn's LinearSVC (liblinear): {m['reference_svm_fit_s']} s "
                         f"({m['svm_speedup']:.1f}x slower). ")
                      + f"D: {r['d_weights']}."]
    if gpu_checks:
        lines += ["", "## GPU check (`bench gpu-check`: lsun64, the paper's nets, batch 128)", "",
                  f"Targets: at least {TARGETS['gpu_images_per_s']:,} images/s and at least {TARGETS['gpu_ratio']:g}x "
                  "the reference in the same run; bf16 counts only with its training curves within tolerance.", "",
                  "| GPU | path | images/s | x reference | quality | targets met |", "|---|---|---|---|---|---|"]
    for r in gpu_checks:
        m = r["metrics"]
        paths = [("fp32 (equal numerics)", m["ours_fp32_images_per_s"], m["ratio_fp32"], True)]
        if m["ours_bf16_images_per_s"] is not None:
            paths.append(("bf16 autocast", m["ours_bf16_images_per_s"], m["ratio_bf16"], m["bf16_quality_passed"]))
        for label, rate, ratio, ok in paths:
            met = rate >= TARGETS["gpu_images_per_s"] and ratio >= TARGETS["gpu_ratio"] and bool(ok)
            quality = "—" if label.startswith("fp32") else ("curves within tolerance" if ok else "curves differ")
            lines.append(f"| {m['gpu']} | {label} | {rate:,.1f} | {ratio:.2f}x | {quality} | {_yes(met)} |")
        lines += ["", f"Reference: {m['reference_images_per_s']:,.1f} images/s. Fraction of the data-sheet bf16 peak "
                  f"({m['bf16_peak_tflops']:g} TFLOP/s): {_pct(m['fraction_of_bf16_peak'])}; of a measured bf16 matmul "
                  f"({m['measured_bf16_matmul_tflops']} TFLOP/s): {_pct(m['fraction_of_measured_bf16_matmul'])}. "
                  f"Record: {r['_file']}, commit {str(r['commit'])[:10]}."]
        ours, ablations = m["ours_fp32_images_per_s"], m["training"]["ablation_images_per_s"]
        off = [f"{name.removeprefix('ours ')}: {rate:,.1f} ({ours / rate:.2f}x)" for name, rate in ablations.items()
               if "bf16" not in name and "compile" not in name]
        if off:
            lines += ["", "Each fast-path choice switched off alone on this GPU (images/s; ours over it): "
                      + "; ".join(off) + "."]
        lines += _compile_lines(m)
        lines += _gpu_check_fid(m, Path(out_dir))
    if not any(r["profile"] != "smoke" for r in gpu_checks) and not any(r["device"].startswith("NVIDIA") or
                                                                      "cuda" in r["device"] for r in train_recs):
        lines += ["", "**Not measured:** the GPU targets (one H100/H200, lsun64, batch 128: at least 10,000 "
                  "images/s, at least 4x the reference, and the fraction of bf16 peak; the probe under 5 minutes "
                  "on a GPU). No GPU was at hand; `python -m dcgan_lib bench gpu-check` measures them in one call."]
    if old:
        lines += ["", "Not shown: records from before the equal-numerics bench (their 'ours' ran bf16 where the "
                  "CPU had AMX): " + ", ".join(f"{r['bench_config']['variant']} ({r.get('threads')} threads)"
                                                for r in old) + ". Delete them and rerun the bench."]
    path = Path(out_dir) / "bench.md"
    path.write_text("\n".join(lines) + "\n")
    return path
