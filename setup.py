"""Install denseclip: ``pip install -e ".[all]"`` brings every runtime and test dependency."""
from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path('denseclip/version.py').read_text(), version)

# PyTorch comes from the registry as a matched torch/torchvision pair; never pin an exact
# torch build (DESIGN.md §5). mmcv-lite is the pure-Python mmcv: mmseg 1.2.2 and mmdet 3.3.0
# assert mmcv < 2.2, and denseclip.compat supplies the compiled ops they call.
install_requires = [
    'torch>=2.4',
    'torchvision',
    'open_clip_torch>=3.0,<3.4',
    'timm>=1.0',
    'safetensors',
    'ftfy',
    'regex',
    'mmengine==0.10.7',
    'mmcv-lite==2.1.0',
    'mmsegmentation==1.2.2',
    'mmdet==3.3.0',
    'opencv-python-headless',
    'pycocotools',
    'scikit-image',
    'scikit-learn',
    'scipy',
    'h5py',  # ImageNet-Segmentation's gtsegs_ijcv.mat (MATLAB v7.3)
    # mmengine resolves package-scoped configs (mmdet::...) through pkg_resources, which
    # setuptools 82 removed; the detector configs inherit mmdet's own bases that way.
    'setuptools<82',
    'numpy',
    'pillow',
]
extras = {
    'demo': ['segment-anything', 'gradio>=6,<7'],
    'tests': ['pytest', 'playwright', 'transformers'],  # the HF CLIP converter's tests
}
extras['all'] = sorted({dep for deps in extras.values() for dep in deps})

setup(
    name='denseclip',
    version=version['__version__'],
    description='CLIP as a dense predictor: training-free and trained open-vocabulary '
    'segmentation on MMEngine/MMSegmentation',
    long_description=Path('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['denseclip', 'denseclip.*']),
    package_data={'denseclip': ['toy/*.json', 'toy/*.safetensors', 'datasets/vocabularies/*/*.txt',
                                'datasets/textspan/*.txt']},
    install_requires=install_requires,
    extras_require=extras,
    license='Apache-2.0',
)
