"""DCGAN course library: nets, data, training, probes and figures (Radford et al. 2015)."""
__version__ = "0.1.0"
