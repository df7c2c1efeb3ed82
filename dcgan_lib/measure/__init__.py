"""Measuring nets and images: FID and KID with the offline Inception (fid), D's pooled features
(features), the L2-SVM (svm) and the choice of its C on validation (c_search), paired comparisons (paired),
the Table 1/2 protocols and their data (probes, probe_data, probe_full, probe_tables) and the baselines they
stand beside (baselines: K-means, KNN, a supervised CNN). It imports `gan`, `figures`, `records`, `data` and
`config`; never `dedup` beside it.
"""
