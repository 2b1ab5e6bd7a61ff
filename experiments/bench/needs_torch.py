"""The PyTorch benchmarks' check before importing torch: without it installed, one line saying how
to get it (the `bench` extra: the CPU build of torch 2.13.0) instead of a ModuleNotFoundError
traceback."""
import importlib.util
import sys


def check() -> None:
  """Returns when torch can be imported; else says how to install it and exits with status 2."""
  if importlib.util.find_spec("torch") is None:
    sys.stderr.write("error: this benchmark times PyTorch beside JAX and needs torch, which is "
                     "not installed here. Install it with pip install -e \".[bench]\" (the CPU "
                     "build of torch 2.13.0; an unpinned torch pulls CUDA wheels), then run the "
                     "same command.\n")
    raise SystemExit(2)
