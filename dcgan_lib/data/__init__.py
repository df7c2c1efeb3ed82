"""The datasets: the registry of what each dataset is (its official source, our mirror archive, checksums;
registry), the archive readers (archives), finding and fetching them on disk with their held-out splits and
duplicate removal (datasets), the decode-once uint8 cache every model trains on (data), and the authors' released
files (authors_releases). It imports only `config`.
"""
