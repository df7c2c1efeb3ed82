"""Measuring nets and images: FID and KID with the offline Inception (fid), D's pooled features (features), the
L2-SVM (svm) and the choice of its C on validation (c_search), paired comparisons (paired), the Table 1/2
protocols: their sizes (probe_settings), data (probe_data), label draws (label_draws), rows (probes, probe_full)
and tables (probe_tables), and the baselines they stand beside (baselines: K-means, KNN, a supervised CNN). It
imports `gan`, `figures`, `records`, `data` and `config`; never `dedup` beside it.
"""
