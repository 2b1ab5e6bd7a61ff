#!/usr/bin/env bash
# science.md section 22: the hazardous cells under ptb_final.py:cpu, 5 epochs, warm-up 0 / 64.
# (The first cell's six runs ran before train.stop_on_divergence existed, which is the same
# as it False; the flag was added for the rest, and the finished runs were skipped.)
cd /work/main && . .venv/bin/activate
out=workdirs/science/v23
for cell in "2 0 3 0 1 2 1 0 1 4 1" "2 0 0 1 1 0 0 0 3 2 2"; do
  tag=$(echo $cell | tr -d ' ')
  for seed in 0 1 2; do
    for n in 0 64; do
      w=$out/c${tag}_s${seed}_w${n}
      [ -f $w/done ] && continue
      rm -rf $w
      python -m enas_jax.train --config=configs/ptb_final.py:cpu \
        --config.data.dir=workdirs/science/ptb_corpus --config.arch="$cell" \
        --config.train.epochs=5 --config.seed=$seed --config.train.lr_warmup_steps=$n --config.train.stop_on_divergence=False \
        --workdir=$w > $w.out 2> $w.err && touch $w/done
      echo "$(date +%T) $tag seed $seed N $n: $(grep -o 'valid ppl [0-9.]*' $w.out | tr '\n' ' ')"
    done
  done
done
