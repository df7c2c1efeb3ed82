"""The course as a whole, at the top of the library: the lessons, their datasets and time estimates
(course), each notebook's Colab badge and install cell (colab), README's front page and RESULTS.md from the
records (report, gallery), and each figure's record beside the paper's (figure_records). It may import every
subpackage below; only the command line (`cli`) stands above it.
"""
