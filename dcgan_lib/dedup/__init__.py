"""De-duplication (§4.1): the 3072-128-3072 autoencoder and its semantic hash (dedup), the shift-robust
search (dedup_robust), a whole dataset hashed into a groups file (dedup_scan) and the planted-duplicate
benchmark (dedup_bench). The groups file is read back by data.datasets.keep_mask. It imports `figures`,
`records`, `data` and `config`; never `measure` beside it.
"""
