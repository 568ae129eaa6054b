"""worldr1: World-R1 (3D-consistent video by RL) as a DVC pipeline of small typed pieces."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("worldr1")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
