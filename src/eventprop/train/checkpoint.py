"""Checkpoints that survive a crash at any instant, and load without executing code.

Writes go to a temporary file in the same directory, are flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows): a reader, or a run resumed after
``kill -9``, sees either the previous complete checkpoint or the new complete one, never a
torn file.

A checkpoint holds only tensors and plain Python values (the numpy RNG key is stored as a
tensor), so it loads with ``torch.load(weights_only=True)``: opening someone else's run
directory cannot run arbitrary code.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "TRAINING_KEYS",
    "capture_rng_state",
    "config_differences",
    "load_checkpoint",
    "load_model_state",
    "restore_rng_state",
    "save_checkpoint",
]

#: bump when the layout of a checkpoint changes
CHECKPOINT_FORMAT = 1
#: what every checkpoint of ``eventprop train`` holds (resume and eval need all of them)
TRAINING_KEYS = (
    "epoch",
    "model",
    "optimizer",
    "schedule",
    "rng",
    "history",
    "best",
    "elapsed_s",
    "meta",
)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain values) to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # serialised in memory first: torch.save writing into a full disk reports only "unexpected
    # pos", while a plain write raises the OSError (ENOSPC, EFBIG, EIO) that says what happened
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        code = exc.errno if exc.errno is not None else errno.EIO
        raise OSError(
            code,
            f"{target}: cannot write the checkpoint ({exc.strerror or exc}; "
            f"{buf.getbuffer().nbytes} bytes); the previous checkpoint is intact: free space "
            "(or fix the disk), then continue the run with eventprop train --resume",
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(target.parent)
    return target


def load_checkpoint(path: str | os.PathLike[str], required: Sequence[str] = ()) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (never executes code).

    ``required`` keys (e.g. :data:`TRAINING_KEYS`) must be present: a foreign or truncated
    checkpoint is refused naming what it lacks, rather than failing later on a ``KeyError``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no checkpoint here")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message advises weights_only=False: never repeated here, since the file
        # is of unknown origin; only its diagnosis is kept
        text = str(exc)
        if "Weights only" not in text:
            raise ValueError(f"{p}: not a readable checkpoint ({_short(exc)})") from exc
        if "GLOBAL" not in text:  # damaged or not a torch file at all
            detail = text.partition("WeightsUnpickler error:")[2].partition("Check the doc")[0]
            detail = " ".join(detail.split())
            raise ValueError(
                f"{p}: not a readable checkpoint (damaged, or not written by eventprop"
                + (f": {detail[:120]}" if detail else "")
                + ")"
            ) from exc
        raise ValueError(
            f"{p}: refused: it holds Python objects beyond tensors and plain values, which "
            "could run code when loaded; eventprop checkpoints never do, so this file was "
            "written by something else: use the run's own checkpoints/last.pt or best.pt"
        ) from exc
    except Exception as exc:  # torch raises many kinds for damaged files
        raise ValueError(f"{p}: not a readable checkpoint ({_short(exc)})") from exc
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{p}: unknown checkpoint format {found!r} (this version reads format "
            f"{CHECKPOINT_FORMAT})"
        )
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(
            f"{p}: not a complete eventprop training checkpoint (missing keys: "
            f"{', '.join(missing)}); use the checkpoints/last.pt or best.pt that eventprop "
            "train wrote for this run"
        )
    return state


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_differences(saved: Any, current: Any, limit: int = 4) -> list[str]:
    """``key (A in the checkpoint, B now)`` for the config keys that differ, model/data first."""
    a, b = _flatten(saved or {}), _flatten(current or {})
    keys = sorted(
        (k for k in a.keys() | b.keys() if a.get(k) != b.get(k)),
        key=lambda k: (not k.startswith(("model.", "data.")), k),
    )
    out = []
    for k in keys[:limit]:
        there, here = repr(a.get(k))[:40], repr(b.get(k))[:40]
        out.append(f"{k} ({there} in the checkpoint, {here} now)")
    if len(keys) > limit:
        out.append(f"{len(keys) - limit} more")
    return out


def load_model_state(
    net: torch.nn.Module, state: Mapping[str, Any], path: str | os.PathLike[str], config: Any
) -> None:
    """``net.load_state_dict(state["model"])``, refusing a checkpoint of another network.

    A mismatch is one line naming the missing, unexpected and differently shaped tensors and
    the config keys (``config``: the current config as a dict) that differ from the
    checkpoint's ``meta.config`` -- instead of torch's multi-line size-mismatch report.
    """
    theirs = state.get("model")
    if not isinstance(theirs, Mapping):
        raise ValueError(f"{path}: its 'model' entry is not a state dict of tensors")
    own = net.state_dict()
    problems = [f"{k} missing" for k in own if k not in theirs]
    problems += [f"{k} not in this network" for k in theirs if k not in own]
    for k, v in own.items():
        t = theirs.get(k)
        if k in theirs and (not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(v.shape)):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            problems.append(f"{k} {shape} in the checkpoint, {tuple(v.shape)} here")
    if not problems:
        net.load_state_dict(theirs)
        return
    meta = state.get("meta")
    saved = meta.get("config") if isinstance(meta, Mapping) else None
    differ = config_differences(saved, config) if saved is not None else []
    shown = "; ".join(problems[:4]) + (f"; {len(problems) - 4} more" if len(problems) > 4 else "")
    hint = (
        f"the config differs from the checkpoint's in {', '.join(differ)}: use the config the "
        "checkpoint was written with"
        if differ
        else "it was written for another network"
    )
    raise ValueError(f"{path}: does not fit this config's network ({shown}); {hint}")


def capture_rng_state() -> dict[str, Any]:
    """The global torch / numpy / Python generator states, as tensors and plain values."""
    # the legacy global generator, saved because user code may draw from it
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": _plain(random.getstate()),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    random.setstate(_tuple(state["python"]))


def _plain(x: Any) -> Any:
    return [_plain(v) for v in x] if isinstance(x, tuple) else x


def _tuple(x: Any) -> Any:
    return tuple(_tuple(v) for v in x) if isinstance(x, list) else x
