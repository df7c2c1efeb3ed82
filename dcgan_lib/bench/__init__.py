"""Speed: our trainer against a reference loop (bench, bench_loops), that the fast settings train alike
(bench_quality), the probe's speed (bench_probe), the bench report (bench_report), FLOPs and the machine's
limit (flops), and quality per CPU-second across sizes (tier_sweep: `python -m dcgan_lib.bench.tier_sweep`). It
imports `models` and every floor below.
"""
