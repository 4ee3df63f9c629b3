"""Convert a Hugging Face (transformers) CLIP checkpoint into open_clip's layout, once.

    python tools/model_converters/hf_clip.py /path/to/hf_dir clip.safetensors
    # writes clip.safetensors (open_clip keys) and clip.json (its open_clip model config)
    python -c "from denseclip.clip import load_clip; load_clip('clip.json', 'clip.safetensors')"

``hf_dir`` holds ``config.json`` and ``model.safetensors``, ``pytorch_model.bin`` or their
``*.index.json`` shards (``CLIPModel``, ``MetaClip2Model``). ``--vision-only`` keeps the image
tower (``visual.*``), for checkpoints whose text tower is not CLIP's (Chinese-CLIP's BERT) or
that have none (the written config then has no ``text_cfg``; use the tower through
``denseclip.clip.hf.load_hf_clip_visual(hf_dir)``). The rules (activation, text pooling, key
table) are :mod:`denseclip.clip.hf`'s; both files are written atomically and the weights keep
their stored dtype.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.clip.hf import read_hf_clip  # noqa: E402
from denseclip.engine.checkpoint import atomic_write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Returns 0, or 1 after printing the error (missing file, unsupported config, bad keys)."""
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='transformers CLIP directory (config.json + weights)')
    parser.add_argument('dst', help='output weights in open_clip layout (.safetensors)')
    parser.add_argument('--config-out', help='open_clip model config to write '
                        '(default: dst with .json)')
    parser.add_argument('--vision-only', action='store_true',
                        help="convert the image tower only (e.g. Chinese-CLIP's)")
    args = parser.parse_args(argv)
    if not args.dst.endswith('.safetensors'):
        print(f'error: dst={args.dst!r} must end with .safetensors', file=sys.stderr)
        return 1
    config_out = args.config_out or args.dst[:-len('.safetensors')] + '.json'
    try:
        hf = read_hf_clip(args.src, vision_only=args.vision_only, allow_shards=True)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err.args[0] if err.args else err}', file=sys.stderr)
        return 1
    state = {k: v.contiguous() for k, v in hf.state.items()}
    meta = {'format': 'pt', 'converted_from': os.path.abspath(args.src),
            'quick_gelu': str(hf.quick_gelu)}
    atomic_write(args.dst, lambda tmp: save_file(state, tmp, metadata=meta))

    def write_config(tmp: str) -> None:
        with open(tmp, 'w') as f:
            json.dump(hf.config, f, indent=2)

    atomic_write(config_out, write_config)
    print(f"{args.dst}: {len(state)} tensors, activation "
          f"{'QuickGELU' if hf.quick_gelu else 'GELU'}; config {config_out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
