"""Cameras, Sim(3) alignment, camera paths, Gaussians and their rasterisers."""
