"""Layers: each a small Module over the functions of ``flambeau.nn.functional``."""
