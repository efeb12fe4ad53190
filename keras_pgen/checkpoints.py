"""Checkpoints as plain numpy archives: what the JAX engine saves, and what either engine can read.

`checkpoints/ckpt-<step>.npz` holds every variable of `model.checkpoint_items()` (networks,
EMA networks, optimizers, counters), keyed `<item>/<index>` in the order Keras lists them,
with their paths and shapes in a JSON manifest, so that a model built by the other backend
from the same config restores it (how `bin/export` exports a JAX run with TensorFlow).
Each file is written to a temporary name and renamed: a file is either whole or absent.
A file that does not read (truncated, corrupt) is skipped for the newest one that does,
with a warning naming it; the run is refused only when none reads (`newest_readable`, which
the TensorFlow engine's checkpoints go through too).
"""
import json
import os
import re
import tempfile

import keras
import numpy as np
from absl import logging

_NAME = re.compile(r"ckpt-(\d+)\.npz$")
_TF_NAME = re.compile(r"ckpt-(\d+)\.index$")  # TensorFlow's checkpoint ckpt-<step>: its index file
_MANIFEST = "__manifest__"


def item_variables(item):
    """The variables of one checkpoint item: a Variable, an optimizer, or a layer / model."""
    if isinstance(item, keras.Variable):
        return [item]
    return list(item.variables)


def _flatten(model):
    return {name: item_variables(item) for name, item in model.checkpoint_items().items()}


def steps(directory, pattern=_NAME):
    """Steps of the `ckpt-<step>.npz` files in `directory` (or of the files `pattern` matches), newest first."""
    if not os.path.isdir(directory):
        return []
    return sorted((int(m.group(1)) for m in map(pattern.match, os.listdir(directory)) if m), reverse=True)


def tf_steps(directory):
    """Steps of TensorFlow's checkpoints `ckpt-<step>` in `directory`, newest first, from their index files.

    Not from TensorFlow's state file `checkpoints/checkpoint`: a run whose state file is lost
    or stale still resumes from its newest checkpoint (and never overwrites it from step 0).
    """
    return steps(directory, _TF_NAME)


def path(directory, step):
    return os.path.join(directory, f"ckpt-{int(step)}.npz")


def save(model, directory, step, keep=3):
    """Writes `model`'s checkpoint items as `directory/ckpt-<step>.npz`; keeps the newest `keep` files."""
    os.makedirs(directory, exist_ok=True)
    arrays, manifest = {}, {}
    for name, variables in _flatten(model).items():
        manifest[name] = [[v.path, list(v.shape)] for v in variables]
        for i, v in enumerate(variables):
            arrays[f"{name}/{i}"] = np.asarray(keras.ops.convert_to_numpy(v.value))
    arrays[_MANIFEST] = np.frombuffer(json.dumps({"step": int(step), "items": manifest}).encode(), np.uint8)
    handle, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path(directory, step))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    for old in steps(directory)[keep:]:
        os.remove(path(directory, old))
    return path(directory, step)


def read(file):
    """`(step, {key: array})` of one checkpoint file, every array read (so a truncated file fails here)."""
    with np.load(file) as archive:
        arrays = {key: archive[key] for key in archive.files}
    manifest = json.loads(arrays.pop(_MANIFEST).tobytes().decode())
    return manifest["step"], manifest["items"], arrays


def keep_items(file, out, names, dtype=None):
    """Writes to `out` a checkpoint with only the items `names` of `file` (optionally cast to `dtype`).

    E.g. the EMA generator alone in float16, a tenth of a GAN checkpoint, which `bin/export`
    exports like the whole one.
    """
    step, items, arrays = read(file)
    kept = {key: (value.astype(dtype) if dtype and value.dtype.kind == "f" else value)
            for key, value in arrays.items() if key.split("/")[0] in names}
    kept[_MANIFEST] = np.frombuffer(json.dumps({"step": step, "items": {n: items[n] for n in names}}).encode(),
                                    np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out, **kept)
    return out


def newest_readable(files, read):
    """`(file, read(file))` for the first of `files` (newest first) that reads; None when `files` is empty.

    Warns about each file that does not read (truncated, corrupt, half deleted), naming it,
    and tries the one before it.

    Raises:
        FileNotFoundError: none of `files` reads (one line naming them).
    """
    for file in files:
        try:
            return file, read(file)
        except Exception as error:  # noqa: BLE001 (zip, pickle, JSON, IO or TensorFlow's reader: unusable either way)
            logging.warning("checkpoint %s does not read (%s: %s); trying the one before it",
                            file, type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "")
    if files:
        raise FileNotFoundError(f"no checkpoint in {os.path.dirname(files[0])} reads: each of "
                                f"{[os.path.basename(f) for f in files]} is damaged")
    return None


def latest(directory):
    """`(path, step, items, arrays)` of the newest checkpoint that reads, or None (`newest_readable`)."""
    found = newest_readable([path(directory, step) for step in steps(directory)], read)
    return None if found is None else (found[0], *found[1])


def restore(model, items, arrays, subset=False):
    """Assigns the arrays of `read()` to `model`'s checkpoint items.

    subset: the checkpoint may hold only some of the items (an export-only checkpoint with
    the EMA generator alone); those it holds must fit.

    Raises:
        ValueError: the checkpoint's items, variable counts or shapes differ from the model's.
    """
    ours = _flatten(model)
    if subset:
        ours = {name: variables for name, variables in ours.items() if name in items}
    if sorted(ours) != sorted(items):
        raise ValueError(f"checkpoint items {sorted(items)} differ from the model's {sorted(ours)}")
    for name, variables in ours.items():
        if len(variables) != len(items[name]):
            raise ValueError(f"{name}: {len(items[name])} variables in the checkpoint, {len(variables)} in the model")
        for i, v in enumerate(variables):
            value = arrays[f"{name}/{i}"]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"{name}: variable {v.path} has shape {tuple(v.shape)} in the model, "
                                 f"{tuple(value.shape)} in the checkpoint ({items[name][i][0]})")
    for name, variables in ours.items():
        for i, v in enumerate(variables):
            v.assign(arrays[f"{name}/{i}"])


def restore_latest(model, directory, workdir, subset=False, changes=(), flags=(), require=()):
    """Grows `model` to the newest readable checkpoint's step (`model.prepare`) and restores it.

    Returns `(path, step)`, or None when `directory` holds no checkpoint.

    The optimizers keep the learning rates the model has (from its config: `runs.learning_rates_kept`).
    `require`: names of checkpoint items the checkpoint must hold (with `subset`, e.g. "discriminator").

    Raises:
        FileNotFoundError: checkpoints exist but none reads.
        ValueError: the checkpoint does not fit the model (`runs.resume_error`: names `changes`, `flags`),
            or lacks an item of `require` (one line naming the items it holds).
    """
    from keras_pgen import runs

    found = latest(directory)
    if found is None:
        return None
    file, step, items, arrays = found
    missing = [name for name in require if name not in items]
    if missing:
        raise ValueError(f"checkpoint {file} holds only {sorted(items)}, not {missing} (an export-only "
                         "checkpoint? use a checkpoint of the whole run)")
    model.prepare(step)
    try:
        with runs.learning_rates_kept(model):
            restore(model, items, arrays, subset=subset)
    except ValueError as error:
        raise runs.resume_error(workdir, file, error, changes, flags) from error
    return file, step
