"""The bookkeeping written once for every (space, task): run state, runner, the search and final-
training loops, outputs, data parallelism."""
