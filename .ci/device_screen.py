"""MSG-GAN preset screening under the JAX engine, several runs at once on one GPU (`MODE=screen .ci/device_check.sh`).

Each job trains `bin/train --backend=jax --method=msg_gan` with its overrides: on the built-in shapes with the
shapes judge on 1,000 samples every `eval_every` steps, or on 1,000 anime faces / the 400 Olivetti faces, after
which `--post` measures the EMA generator's diversity (pixels, discriminator features) and border against the
first 64 real images, without TensorFlow. Jobs run in priority order until BUDGET seconds have passed.

Env: BUDGET (s, whole screen), NPAR (runs at once), OUT, JOBS (comma list of names; default all), SCALE (steps x),
MINSTEPS, ANIME (folder of the 1,000 faces), OLIVETTI (folder of the 400 faces as PNGs).
Writes $OUT/results.json (the judge's curve per shapes run, the post metrics per face run), grids.tar, logs.tar.gz.
"""
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("OUT", "/tmp/out")
BUDGET = float(os.environ.get("BUDGET", "330"))
NPAR = int(os.environ.get("NPAR", "8"))
SCALE = float(os.environ.get("SCALE", "1"))
ROOT = os.environ.get("SWEEP_ROOT", "/tmp/sw")
ANIME = os.environ.get("ANIME", "/tmp/anime1000")
OLIV = os.environ.get("OLIVETTI", os.path.join(REPO, ".gpu/olivetti400"))

FB = {"fmap_base": 256}
LBR = {"g_latent_bias": "true", "g_padding": "reflect"}
# (name, data, steps, eval_every, overrides), in priority order
JOBS = [
    ("s_default", "shapes", 2000, 100, {}),
    ("s_fb256", "shapes", 2000, 100, FB),
    ("s_fb256_lbr", "shapes", 2000, 100, {**FB, **LBR}),
    ("s_lbr", "shapes", 2000, 100, LBR),
    ("s_wide_long", "shapes", 10000, 500, {"fmap_base": 2048, "fmap_max": 256, "batch_size": 64, "g_lr": 0.003,
                                            "d_lr": 0.003}),
    ("s_default_long", "shapes", 10000, 500, {}),
    ("a_default", "anime", 1200, 0, {}),
    ("a_lbr", "anime", 1200, 0, LBR),
    ("s_fb256m64", "shapes", 2000, 100, {"fmap_base": 256, "fmap_max": 64}),
    ("s_fb256_lr2", "shapes", 2000, 100, {**FB, "g_lr": 0.002, "d_lr": 0.002}),
    ("s_fb256_g2", "shapes", 2000, 100, {**FB, "g_lr": 0.002}),
    ("s_fb256_b16", "shapes", 2000, 100, {**FB, "batch_size": 16}),
    ("s_fb256_ns", "shapes", 2000, 100, {**FB, "loss": "ns", "r1_gamma": 1.0}),
    ("s_fb256_lb", "shapes", 2000, 100, {**FB, "g_latent_bias": "true"}),
    ("s_fb256_refl", "shapes", 2000, 100, {**FB, "g_padding": "reflect"}),
    ("a_fb256", "anime", 1200, 0, FB),
    ("a_refl", "anime", 1200, 0, {"g_padding": "reflect"}),
    ("s_fb256_ema99", "shapes", 2000, 100, {**FB, "ema_decay": 0.99}),
    ("s_fb256_da", "shapes", 2000, 100, {**FB, "augment": "diffaugment"}),
    ("s_fb256_hinge", "shapes", 2000, 100, {**FB, "loss": "hinge"}),
    ("s_fb256_lbr_s1", "shapes", 2000, 100, {**FB, **LBR, "seed": 1}),
    ("s_fb256_s1", "shapes", 2000, 100, {**FB, "seed": 1}),
    ("a_fb256_lbr", "anime", 1200, 0, {**FB, **LBR}),
    ("o_fb256_lbr", "olivetti", 1200, 0, {**FB, **LBR}),
    ("o_fb256", "olivetti", 1200, 0, FB),
    ("s_wide_n64k", "shapes", 5000, 500, {"fmap_base": 2048, "fmap_max": 256, "batch_size": 64, "g_lr": 0.003,
                                          "d_lr": 0.003, "num_images": 65536}),
    ("s_default_n64k", "shapes", 2000, 100, {"num_images": 65536}),
    ("s_refl", "shapes", 2000, 100, {"g_padding": "reflect"}),
    ("a_default_s1", "anime", 1200, 0, {"seed": 1}),
    ("a_default_s2", "anime", 1200, 0, {"seed": 2}),
    ("a_refl_s1", "anime", 1200, 0, {"g_padding": "reflect", "seed": 1}),
    ("a_refl_s2", "anime", 1200, 0, {"g_padding": "reflect", "seed": 2}),
    ("o_default", "olivetti", 1200, 0, {}),
    ("o_refl", "olivetti", 1200, 0, {"g_padding": "reflect"}),
]
JUDGE = re.compile(r"step (\d+): shapes judge: (\d+) kinds covered, mean confidence ([\d.]+), FID (-?[\d.]+) "
                   r"\(real vs real (-?[\d.]+)\), KID (-?[\d.]+) \(real vs real (-?[\d.]+)\)")
T0 = time.time()


def run(job):
    name, data, steps, every, over = job
    steps = max(int(os.environ.get("MINSTEPS", "100")), int(steps * SCALE))
    left = BUDGET - (time.time() - T0)
    if left < 45:
        return {"name": name, "skipped": True}
    wd = os.path.join(ROOT, name)
    cmd = ["timeout", "-s", "TERM", str(int(left)), sys.executable, "bin/train", "--backend=jax", "--method=msg_gan",
           f"--workdir={wd}", f"--config.total_steps={steps}", "--config.export=false",
           f"--config.sample_every={min(500, steps)}", f"--config.checkpoint_every={steps}", "--config.log_every=100",
           "--config.num_samples=36", f"--config.eval_every={every}"]
    if data == "shapes":
        cmd += ["--config.eval_num_samples=1000", "--config.eval_features=shapes"]
    elif data == "anime":
        cmd += [f"--data={ANIME}"]
    else:
        cmd += [f"--data={OLIV}", "--config.channels=1"]
    cmd += [f"--config.{k}={v}" for k, v in over.items()]
    t = time.time()
    with open(wd + ".log", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    res = {"name": name, "data": data, "steps": steps, "over": over, "rc": rc, "wall": round(time.time() - t, 1)}
    text = open(wd + ".log", errors="replace").read()
    res["judge"] = [[int(m[0]), int(m[1]), float(m[2]), float(m[3]), float(m[4]), float(m[5]), float(m[6])]
                    for m in JUDGE.findall(text)]
    last = re.findall(r"(\d+)(ms|s)/step", text)
    res["ms_step"] = int(last[-1][0]) * (1 if last[-1][1] == "ms" else 1000) if last else None
    if data != "shapes" and os.path.isdir(os.path.join(wd, "checkpoints")):  # keys: step, diversity_ratio_*, border_*
        post = subprocess.run([sys.executable, __file__, "--post", wd, ANIME if data == "anime" else OLIV],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        found = [line for line in post.stdout.splitlines() if line.startswith("POST ")]
        res["post"] = json.loads(found[-1][5:]) if found else post.stderr[-500:]
    print(json.dumps(res), flush=True)
    return res


def post(wd, data):
    """Prints "POST {json}": `evaluate.diversity_ratios` (pixels, discriminator features) and
    `metrics.border_report` of the EMA generator of the JAX run in `wd` (no TensorFlow)."""
    import ml_collections
    import numpy as np
    from keras import ops

    from keras_pgen import checkpoints, evaluate, metrics, registry
    from keras_pgen import data as data_lib
    from keras_pgen import images as images_lib
    from keras_pgen.models.base import precision_policy

    cfg = ml_collections.ConfigDict(json.load(open(os.path.join(wd, "config.json"))))
    with precision_policy(cfg):
        model = registry.build_model(cfg)
    _, step = checkpoints.restore_latest(model, os.path.join(wd, "checkpoints"), wd, subset=True)
    src = data_lib.load_source(data, cfg.resolution, cfg.channels)
    real, _ = src.get(np.arange(64))
    real = np.asarray(real, np.uint8)
    z = np.random.default_rng(0).standard_normal((64, cfg.latent_dim)).astype("float32")
    out = model.ema_generator(z, training=False)
    out = out[-1] if isinstance(out, (list, tuple)) else out
    fake = images_lib.to_uint8(np.asarray(ops.convert_to_numpy(ops.cast(out, "float32"))))

    dfeat = evaluate.model_discriminator_features
    r = {"step": int(step), **evaluate.diversity_ratios(fake, real, dfeat(model, fake), dfeat(model, real))}
    r.update(metrics.border_report(fake, real))
    print("POST", json.dumps({k: float(v) for k, v in r.items()}))


def main():
    os.makedirs(ROOT, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    names = os.environ.get("JOBS")
    jobs = [j for j in JOBS if not names or j[0] in names.split(",")]
    with cf.ThreadPoolExecutor(NPAR) as pool:
        results = list(pool.map(run, jobs))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with tarfile.open(os.path.join(OUT, "grids.tar"), "w") as tar:
        for name, *_ in jobs:
            d = os.path.join(ROOT, name, "samples")
            if os.path.isdir(d):
                for g in sorted(os.listdir(d)):
                    if re.search(r"_(32x32)\.png$", g):
                        tar.add(os.path.join(d, g), f"{name}/{g}")
    with tarfile.open(os.path.join(OUT, "logs.tar.gz"), "w:gz") as tar:
        for name, *_ in jobs:
            if os.path.exists(os.path.join(ROOT, name + ".log")):
                tar.add(os.path.join(ROOT, name + ".log"), name + ".log")
    print("sweep done in", round(time.time() - T0), "s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--post"]:
        post(*sys.argv[2:4])
    else:
        main()
