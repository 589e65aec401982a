"""sreconv's benchmarks, kept outside the library: the rotation-robustness comparison (``sreconv compare``)
and the peer models it compares against (e2cnn; imported only when a comparison asks for them)."""
