#!/usr/bin/env bash
# The GPU checks of the JAX engine, run on a lent GPU machine (JAX + CUDA and PyTorch, no TensorFlow):
# training speed against the PyTorch peer and the bare Keras-JAX loop, then ~200 s of MSG-GAN on anime faces.
# Needs, in the ignored folder .gpu/: whl/ (keras, namex, optree, ml_collections), bench/ (../shared/bench/*.py)
# and anime.tar (../shared/data/anime_faces_64/images.tar). Results go to $OUT (README, "Measured").
# MODE=methods: every method's tiny preset; MODE=screen: .ci/device_screen.py (BUDGET, NPAR, JOBS), which also needs
# olivetti400/ (the 400 Olivetti faces as PNGs) in .gpu/.
set -u
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
export OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SECONDS_TRAIN=${SECONDS_TRAIN:-190}
PY=${PY:-python3}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
if [ "${MODE:-speed}" = methods ]; then  # every method's tiny preset trains, resumes and samples on the GPU
  for m in gan msg_gan progan vae vae_gan deepsim cond_decoder pgen; do
    for total in 4 8; do
      timeout 120 $PY bin/train --backend=jax --method=$m --preset=tiny --workdir=/tmp/m/$m --config.total_steps=$total \
          --config.export=false > "/tmp/m_$m.log" 2>&1
      echo "$m total_steps=$total exit $? $(tail -c 300 /tmp/m_$m.log | tr '\r\n' '  ' | grep -o 'trained.*\|error.*' | head -c 150)" \
          | tee -a "$OUT/methods.txt"
    done
    ls /tmp/m/$m/samples /tmp/m/$m/checkpoints | tr '\n' ' ' | head -c 400 >> "$OUT/methods.txt"; echo >> "$OUT/methods.txt"
  done
  exit 0
fi
mkdir -p /tmp/anime && tar -xf .gpu/anime.tar -C /tmp/anime
if [ "${MODE:-speed}" = screen ]; then  # MSG-GAN presets on shapes, 1,000 anime faces, 400 Olivetti faces (.gpu/olivetti400)
  mkdir -p /tmp/anime1000 && (cd /tmp/anime/images && ls | LC_ALL=C sort | head -1000 | xargs -I{} ln -sf /tmp/anime/images/{} /tmp/anime1000/{})
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt"
  XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=$PYTHONPATH:$PWD ANIME=/tmp/anime1000 $PY .ci/device_screen.py 2>&1 | tee "$OUT/screen.txt"
  exit 0
fi
LOG="$OUT/bench.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import jax, keras, torch; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
bench() { timeout 120 $PY bin/benchmark --task=train --backend=jax --method=msg_gan --preset=bench64 --bench_dir=.gpu/bench \
    --torch_python=$PY --torch_device=cuda "$@" 2>"$OUT/last_err.txt" | tail -1 | tee -a "$LOG"; }
bench --steps=${STEPS:-50} --warmup=3 --config.batch_size=64
bench --steps=${STEPS:-50} --warmup=3 --config.batch_size=256 --config.mixed_precision=true --config.mixed_precision_dtype=bfloat16
timeout 80 $PY .gpu/bench/jax_bare_msg_gan.py --batch 64 --steps ${STEPS:-50} 2>>"$OUT/last_err.txt" | tail -1 | tee -a "$LOG"
# quality: faces64 on the anime faces, stopped by SIGTERM after SECONDS_TRAIN (a checkpoint is saved at the stop)
start=$(date +%s)
timeout -s TERM $SECONDS_TRAIN $PY bin/train --backend=jax --method=msg_gan --preset=faces64 --data=/tmp/anime \
    --workdir=/tmp/faces --config.batch_size=64 --config.total_steps=100000 --config.sample_every=1000 \
    --config.checkpoint_every=5000 --config.log_every=200 --config.export=false 2>"$OUT/train_err.txt" | tr '\r' '\n' | tail -3
echo "train exit $? wall $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
tail -5 "$OUT/train_err.txt"
cp /tmp/faces/config.json "$OUT/faces_config.json"
last=$(ls /tmp/faces/samples | grep 64x64 | sort | tail -1) && cp "/tmp/faces/samples/$last" "$OUT/faces_$last"
$PY - <<'PYEOF'
import glob, os, sys
sys.path.insert(0, os.getcwd())
from keras_pgen import checkpoints
step = checkpoints.steps("/tmp/faces/checkpoints")[0]
checkpoints.keep_items(checkpoints.path("/tmp/faces/checkpoints", step), os.environ["OUT"] + f"/faces_ema_ckpt-{step}.npz",
                       ["ema_generator"], dtype="float16")
print("kept step", step)
PYEOF
cat "$OUT/gpu.txt"
