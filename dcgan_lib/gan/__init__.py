"""The DCGAN itself: G and D of every variant (nets), the trainer and its batch sampler (train), what
defines a run (train_config), differentiable augmentation (diffaug), run folders and checkpoints (runs), and the
authors' released weights ported to our nets (authors). It imports `figures`, `records`, `data` and `config`;
it never measures a model (that is `measure`, one floor up) nor serves one by name (that is `models`).
"""
