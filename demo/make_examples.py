"""Write the demos' bundled picture ``demo/examples/toy_world.png``: one toy-world scene.

    python demo/make_examples.py

The scene is ``denseclip.toy.generate_scene(SEED, SIZE)``, so the file can always be remade
bit for bit (for a given ``denseclip/toy/world.py``). SEED was chosen for a scene of four
things on grass, water and sky that the bundled toy CLIP names right.
"""
from pathlib import Path

from PIL import Image

from denseclip.toy import generate_scene

SEED = 10
SIZE = 224  # the toy CLIP's training resolution
OUT = Path(__file__).resolve().parent / 'examples' / 'toy_world.png'


def main() -> None:
    scene = generate_scene(SEED, SIZE)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(OUT, optimize=True)
    print(f'wrote {OUT} ({OUT.stat().st_size // 1024} KB): {scene.caption}')


if __name__ == '__main__':
    main()
