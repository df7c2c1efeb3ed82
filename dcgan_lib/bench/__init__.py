"""Speed: our trainer against a reference loop (bench, bench_loops), that the fast settings train alike
(bench_quality), the probe's speed (bench_probe), the bench report (bench_report), FLOPs and the machine's
limit (flops), quality per CPU-second across sizes (tier_sweep: `python -m dcgan_lib.bench.tier_sweep`), and
whole runs compared along training (whole_runs: `python -m dcgan_lib.bench.whole_runs`), and Fig. 7's verdict on
faces G of other seeds and epochs (fig7_models: `python -m dcgan_lib.bench.fig7_models`). It imports `models` and
every floor below.
"""
