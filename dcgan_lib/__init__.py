"""DCGAN course library: the paper (Radford et al. 2015) rebuilt, one subpackage per part of the course.

The subpackages are the course's architecture, top floor first; each imports only the floors below it (two
on one floor never import each other), and each `__init__` says what it owns:

- `cli`: the command line, `python -m dcgan_lib ...`; the library never imports it
- `course`: the lessons and their time estimates, Colab cells, README/RESULTS from the records, figure records
- `bench`: speed against a reference loop, FLOPs and the machine's limit, the tier sweep
- `models`: the model store (a trained, measured model by dataset, variant and profile), training logs, memorisation
- `measure` (FID/KID, D features, the L2-SVM, Tables 1-2, baselines) and `dedup` (the §4.1 hash and scans)
- `gan`: the nets, the trainer and its config, run folders, the authors' weights ported
- `figures`: plots, latent walks and arithmetic, guided backprop and dropped maps, faces
- `data` (registry, archives, the decode-once cache, the authors' files) and `records` (result records)
- `config`: paths, profiles (`smoke`, `cpu`, `gpu`, `paper`) and the device rule

tests/test_architecture.py holds the floors and fails on an import circle or an import that runs back up.
"""
__version__ = "0.1.0"
