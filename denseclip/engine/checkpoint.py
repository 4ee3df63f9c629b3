"""Training checkpoints: atomic writes and ``weights_only=True`` loading of mmengine files.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses every global a
pickle names unless it is allow-listed; mmengine 0.10.7 resumes through plain ``torch.load``
(DESIGN.md §5). Instead of turning the default off, :func:`mmengine_safe_globals` allow-lists,
for the duration of a ``with`` block, exactly what an mmengine training checkpoint holds. The
list was read off real checkpoints with ``torch.serialization.get_unsafe_globals_in_checkpoint``
(tests/test_clip_dinoiser checks it stays complete):

* ``message_hub``: ``mmengine.logging.HistoryBuffer`` objects, whose pickled state holds numpy
  arrays (``_reconstruct``, ``ndarray``, ``dtype``), numpy scalars, and the class's statistics
  methods, pickled as ``getattr(HistoryBuffer, 'min')``. ``builtins.getattr`` itself would let a
  file reach any attribute of any allowed object, so that name is bound to
  :func:`_history_buffer_method`, which resolves HistoryBuffer's statistics methods only.
* ``optimizer``, ``param_schedulers``, ``meta``: tensors, dicts, lists, tuples, numbers, strings
  and ``collections.Counter``/``OrderedDict``, all allowed by torch by default.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = ['mmengine_safe_globals', 'atomic_replace', 'latest_checkpoint', 'read_checkpoint',
           'load_checkpoint_strict', 'TMP_SUFFIX', 'remove_partial_files',
           'atomic_write', 'exclude_from_state_dict']

TMP_SUFFIX = '.tmp'  # a checkpoint being written is ``<name>.tmp`` until os.replace
_HISTORY_BUFFER_STATISTICS = {'min', 'max', 'current', 'mean'}
_CKPT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def _history_buffer_method(owner: object, name: str) -> object:
    """``getattr`` restricted to HistoryBuffer's statistics methods."""
    # The defaults are registered lazily by the first HistoryBuffer(); custom ones by
    # HistoryBuffer.register_statistics.
    allowed = _HISTORY_BUFFER_STATISTICS | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only the HistoryBuffer statistics '
        f'methods {sorted(allowed)} are allowed')


def _numpy_globals() -> list:
    """numpy's array/scalar reconstruction under its 2.x (``numpy._core``) and 1.x
    (``numpy.core``) module names, so checkpoints written with either load."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    out: list = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        fn = getattr(multiarray, name)
        out += [(fn, f'numpy._core.multiarray.{name}'), (fn, f'numpy.core.multiarray.{name}')]
    # Unpickling a dtype BUILDs an instance of its per-type class (numpy.dtypes.Float64DType...),
    # which get_unsafe_globals_in_checkpoint does not list: allow the numeric ones.
    out += [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                        np.uint8, np.uint16, np.uint32, np.uint64,
                                        np.float16, np.float32, np.float64)]
    return out


def mmengine_safe_globals() -> contextlib.AbstractContextManager:
    """Context in which ``torch.load(..., weights_only=True)`` reads mmengine checkpoints."""
    return torch.serialization.safe_globals(
        [HistoryBuffer, (_history_buffer_method, 'builtins.getattr')] + _numpy_globals())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_replace(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Flush ``tmp`` to disk and rename it to ``final`` in one step (same directory), so a
    reader sees the old file or the complete new one, never a partial write.

    ``final`` gets the mode of the file it replaces, else the user's umask applied to 0o666 (a
    ``tempfile.mkstemp`` file is 0o600 whatever the umask).
    """
    try:
        mode = os.stat(final).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    with open(tmp, 'rb+') as f:
        os.fchmod(f.fileno(), mode)
        os.fsync(f.fileno())
    os.replace(tmp, final)
    with contextlib.suppress(OSError):  # persist the rename itself; not possible on every OS
        fd = os.open(os.path.dirname(os.path.abspath(final)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, then :func:`atomic_replace` it over
    ``path``: a reader sees the old file or the whole new one, and a failed write leaves
    nothing behind. Creates ``path``'s folder.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        atomic_replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def exclude_from_state_dict(module: torch.nn.Module, prefixes: tuple[str, ...]) -> None:
    """Keep the submodules under ``prefixes`` (frozen teachers, a mask source: modules rebuilt
    from their own weights) out of ``module``'s checkpoints: ``state_dict`` drops their keys and
    loading does not report them missing."""
    def drop(module: torch.nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
        for key in [k for k in state_dict if k.startswith(tuple(prefix + p for p in prefixes))]:
            del state_dict[key]

    def ignore_missing(module: torch.nn.Module, incompatible_keys) -> None:
        missing = incompatible_keys.missing_keys
        missing[:] = [k for k in missing if not k.startswith(prefixes)]

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_post_hook(ignore_missing)


def remove_partial_files(directory: str | os.PathLike) -> list[Path]:
    """Delete ``*.pth.tmp`` left in ``directory`` by a run killed while saving; returns them."""
    removed = []
    for path in Path(directory).glob(f'*.pth{TMP_SUFFIX}'):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _checkpoints(directory: Path) -> Iterator[tuple[int, Path]]:
    for path in directory.glob('*.pth'):
        match = _CKPT_NAME.match(path.name)
        if match:
            yield int(match.group(2)), path


def latest_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint to auto-resume from.

    ``work_dir/last_checkpoint`` (written by mmengine's CheckpointHook after each save) when it
    names an existing file; otherwise, e.g. if the run was killed while that small file was
    being rewritten, the ``iter_N.pth``/``epoch_N.pth`` in ``work_dir`` with the largest N.

    Returns:
        A path, or None if there is no checkpoint.
    """
    work_dir = Path(work_dir)
    pointer = work_dir / 'last_checkpoint'
    if pointer.is_file():
        named = pointer.read_text().strip()
        if named and os.path.isfile(named):
            return named
    found = sorted(_checkpoints(work_dir))
    return str(found[-1][1]) if found else None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """The state dict and meta of a checkpoint file (mmengine, mmseg 0.x, detectron2 or a bare
    state dict).

    Reads with ``weights_only=True`` (mmengine's classes allow-listed), unwraps ``state_dict``
    and a DDP ``module.`` prefix.

    Returns:
        ``(state_dict, meta)``; meta is empty if the file has none.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {os.fspath(path)!r} does not exist or is not a file')
    try:
        with mmengine_safe_globals():
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # truncated, corrupt or not a torch file
        raise ValueError(f'{path}: cannot read the checkpoint ({type(err).__name__}: {err})') \
            from None
    state = None
    if isinstance(ckpt, dict):  # mmengine / mmseg 0.x: 'state_dict'; detectron2: 'model'
        state = next((ckpt[k] for k in ('state_dict', 'model') if isinstance(ckpt.get(k), dict)),
                     ckpt)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f'{path}: expected a state dict of tensors or {{"state_dict": ...}}, '
                         f'got {type(ckpt).__name__}')
    if state and all(key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    meta = ckpt.get('meta', {}) if state is not ckpt else {}
    return state, meta if isinstance(meta, dict) else {}


def load_checkpoint_strict(model: torch.nn.Module, path: str | os.PathLike) -> dict:
    """Load a training or converted checkpoint into ``model``: every key and shape must match.

    Reads it with :func:`read_checkpoint` and raises a ValueError that lists the missing,
    unexpected and mismatched keys (:func:`denseclip.clip.loading.load_state_dict_strict`).

    Returns:
        The checkpoint's ``meta`` (empty if it has none).
    """
    from denseclip.clip.loading import load_state_dict_strict

    state, meta = read_checkpoint(path)
    load_state_dict_strict(model, state, source=os.fspath(path))
    return meta


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """torch.save into ``<path>.tmp``, then an atomic rename: never a partial file."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        torch.save(obj, path + TMP_SUFFIX)
        atomic_replace(path + TMP_SUFFIX, path)
    finally:
        if os.path.exists(path + TMP_SUFFIX):
            os.remove(path + TMP_SUFFIX)


def check_checkpoint_file(path: str | os.PathLike, what: str = 'checkpoint') -> Path:
    """A torch checkpoint's path, after checking that the file is a complete zip archive (what
    ``torch.save`` writes) by its central directory, without reading the tensors.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated or foreign file (the message says where complete ones are).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} {str(path)!r} does not exist')
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f'{what} {path}: not a complete torch checkpoint ({err}); it may be '
                         f'truncated. An interrupted save leaves <name>{TMP_SUFFIX}, never '
                         '<name>: resume from the previous checkpoint (--resume alone picks '
                         'the latest complete one)') from None
    return path


def rename_keys(state: dict[str, torch.Tensor], rules: tuple[tuple[str, str | None], ...],
                method: str, expected: str) -> dict[str, torch.Tensor]:
    """A released state dict renamed by ``rules``, the table of a model converter.

    Args:
        state: the released state dict.
        rules: (pattern, target) pairs: the first pattern that matches a whole key renames it
            to ``match.expand(target)``; a None target drops the key (a parameter the released
            forward never reads).
        method: the method's name, and ``expected`` what the file should be, for the error.

    Raises:
        KeyError: keys no rule covers (the first 10 listed).
    """
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, target in rules:
            match = re.fullmatch(pattern, key)
            if match is not None:
                if target is not None:
                    out[match.expand(target)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} keys of no released {method} module: {unknown[:10]}; '
                       f'is this {expected}?')
    return out


def convert_checkpoint_cli(argv: list[str] | None, convert, description: str) -> int:
    """``tools/model_converters/<method>.py SRC DST``: read a released checkpoint, rename its
    keys with ``convert(state) -> state`` and write ``{'state_dict', 'meta'}`` atomically.

    Returns:
        0, or 1 after printing the error (missing file, unreadable file, unknown keys).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint in denseclip layout (.pth)')
    args = parser.parse_args(argv)
    try:
        state = convert(read_checkpoint(args.src)[0])
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err.args[0] if err.args else err}', file=sys.stderr)
        return 1
    save_atomic({'state_dict': state, 'meta': {'converted_from': os.path.abspath(args.src)}},
                args.dst)
    print(f'{args.dst}: {len(state)} tensors')
    return 0
