"""Building blocks of the jitted steps: convolutions (`conv`, `fixed_blocks`), parameter
arithmetic (`params`), the NaN/Inf guard (`guards`) and the float32 and mixed-precision matrix
products (`products`). Pure functions of arrays."""
