"""DCGAN course library: nets, data, training, probes and figures (Radford et al. 2015).

One concern per module; `cli/` (the command line) sits on top and the library never imports it.

- settings: `profiles` (every knob of a run), `course` (which notebook rebuilds what)
- data: `archives` (reading archive formats), `registry` (what each dataset is), `authors_releases`
  (the authors' model files), `datasets` (finding and fetching them on disk), `data` (decoding, caches)
- nets and training: `nets`, `train_config` (what defines a run), `train` (the trainer and its batch
  sampler), `runs` (run folders and checkpoints), `store` (a model by dataset, variant and profile),
  `trainlog` (a run's history for figures)
- measuring: `fid` (FID, KID), `features` (D's pooled features), `svm` (the L2-SVM), `probe_data`,
  `probes`, `probe_tables`, `probe_full` (Tables 1-2), `baselines` (K-means, KNN, supervised CNN),
  `memorisation`, `tier_sweep` (quality per CPU-second)
- de-duplication (§4.1): `dedup` (the hash), `dedup_robust` (shift-robust search), `dedup_scan` (a whole
  dataset -> groups file), `dedup_bench` (planted-duplicate benchmark)
- inside the nets (§6): `latent` (walks, arithmetic), `dissect` (guided backprop, dropped maps), `faces` and
  `face_detect` (OpenCV cascades), `authors` (the authors' released nets ported)
- speed: `bench` (ours vs a reference loop), `bench_loops`, `bench_quality`, `bench_probe`, `bench_report`,
  `flops` (the machine's limit)
- outputs: `plots`, `results` (one JSON record per experiment), `figure_records` (the paper's side of each
  figure), `report` (README's results section from the records)
"""
__version__ = "0.1.0"
