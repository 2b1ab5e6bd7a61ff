#!/usr/bin/env bash
# Exploratory (not planned before the run), science.md section 22's largest warm-up lag at epoch 5 (cell
# 2 0 0 1 1 0 0 0 3 2 2, seed 1: +33.5) trained the recipe's full 30 epochs both ways.
cd /work/main && . .venv/bin/activate
for n in 0 64; do
  w=workdirs/science/v23/full_c20011000322_s1_w$n
  rm -rf $w
  python -m enas_jax.train --config=configs/ptb_final.py:cpu \
    --config.data.dir=workdirs/science/ptb_corpus --config.arch="2 0 0 1 1 0 0 0 3 2 2" \
    --config.seed=1 --config.train.lr_warmup_steps=$n --config.train.stop_on_divergence=False \
    --workdir=$w > $w.out 2> $w.err
  echo "$(date +%T) N $n: $(grep -E '^final' $w.out)"
done
