"""Building blocks of the jitted steps: convolutions (`conv`, `fixed_blocks`), parameter
arithmetic (`params`) and the NaN/Inf guard (`guards`). Pure functions of arrays."""
