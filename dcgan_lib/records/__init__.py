"""Result records and their provenance: one JSON record per experiment with its commit, code digest,
profile, data, device, seed and wall time, paths written portably, and the figures folder of a profile
(results). It imports only `config`; every floor above writes its numbers through it.
"""
