"""Pictures of rotation behaviour: CAMs under rotation, rotation GIFs, accuracy-vs-angle plots, kernels and
an HTML report of runs. Command line: ``sreconv cam | gif | plot | kernels | report``.

Needs the optional packages ``matplotlib`` (all pictures), ``grad-cam`` (CAMs) and ``imageio`` (GIFs);
submodules import them when used, so ``import sreconv.viz`` itself only needs torch and numpy.
"""

from .run import LoadedRun, VizError, load_run, read_results

__all__ = ["LoadedRun", "VizError", "load_run", "read_results"]
