"""Checks of a benchmark config that fail before the runner starts, with messages that say what
is wrong and how to fix it.

mmengine merges ``--cfg-options`` keys silently and builds modules deep inside the runner, so a
typo (``model.logit_scal=50``), an unregistered type (``SCLIPAtention``), a missing dataset or
a class-name file for another dataset otherwise surfaces as a traceback minutes later, or not at
all. :func:`check_config` runs every check; ``tools/test.py`` calls it after merging options.
"""
from __future__ import annotations

import ast
import difflib
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmengine.config import Config
from mmengine.registry import Registry

from denseclip.models.text import Vocabulary
from denseclip.registry import DATASETS, MODELS

__all__ = ['check_config', 'check_config_file', 'check_model_config', 'check_data',
           'check_vocabulary', 'check_config_keys', 'check_dataset_configs', 'DATA_PREPARATION',
           'scope_registries']

# The top-level keys mmengine's Runner and OpenMMLab configs read. A config may define other
# variables; one within a typo of these (test_dataloadr) is an error.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'runner_type', 'custom_imports',
    'model_wrapper_cfg', 'vis_backends', 'train_pipeline', 'test_pipeline', 'tta_model',
    'tta_pipeline', 'dataset_type', 'data_root', 'crop_size', 'backend_args', 'compile',
    'strategy', 'find_unused_parameters', 'cfg', 'img_ratios')

# Where the registered types of a config key's role live (the last part of the key).
_ROLE_MODULES = {
    'model': 'denseclip.models.segmentors',
    'backbone': 'denseclip.models.backbones',
    'dense': 'denseclip.models.dense',
    'refiner': 'denseclip.models.refiners',
    'heatmap': 'denseclip.models.grounding',
}

_GUIDE = 'model_zoo.md, "Preparing the data"'
# How to obtain each benchmark's files, by dataset type.
DATA_PREPARATION: dict[str, str] = {
    'PascalVOCDataset': f'unpack VOCtrainval_11-May-2012.tar under data/VOCdevkit ({_GUIDE})',
    'PascalVOC20Dataset': f'unpack VOCtrainval_11-May-2012.tar under data/VOCdevkit ({_GUIDE})',
    'PascalContextDataset': ('unpack VOCtrainval_03-May-2010.tar under data/VOCdevkit and write '
                             "the Context labels with mmseg's tools/dataset_converters/"
                             f'pascal_context.py ({_GUIDE})'),
    'PascalContextDataset59': ('unpack VOCtrainval_03-May-2010.tar under data/VOCdevkit and '
                               "write the Context labels with mmseg's tools/dataset_converters/"
                               f'pascal_context.py ({_GUIDE})'),
    'COCOObjectDataset': ('prepare COCO-Stuff-164k, then run python tools/dataset_converters/'
                          f'coco_object.py data/coco_stuff164k ({_GUIDE})'),
    'COCOStuffDataset': ('unpack val2017.zip and stuffthingmaps_trainval2017.zip under '
                         "data/coco_stuff164k and run mmseg's tools/dataset_converters/"
                         f'coco_stuff164k.py ({_GUIDE})'),
    'CityscapesDataset': ('unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip '
                          "under data/cityscapes and run mmseg's tools/dataset_converters/"
                          f'cityscapes.py ({_GUIDE})'),
    'ADE20KDataset': f'unpack ADEChallengeData2016.zip under data/ade ({_GUIDE})',
    'ImageNetSegDataset': ('put gtsegs_ijcv.mat (ImageNet-Segmentation, Guillaumin et al.; the '
                           'file Chefer et al. and TextSpan evaluate on) under data/imagenet_seg'),
    'ZSGNetDataset': ('download the ZSGNet csvs (TheShadow29/zsgnet-pytorch DATA_README.md) to '
                      'data/grounding/ds_csv_ann and the Flickr30k / Visual Genome images to '
                      'data/grounding/{flickr/flickr30k-images,vg} (model_zoo.md, "Phrase '
                      'localization")'),
    'Flickr30kEntitiesDataset': ('clone BryanPlummer/flickr30k_entities under '
                                 'data/grounding/flickr and run python tools/dataset_converters/'
                                 'flickr30k_entities.py data/grounding/flickr/flickr30k_entities '
                                 'data/grounding/flickr30k_entities_test.csv (model_zoo.md, '
                                 '"Phrase localization")'),
}


def check_config_file(path: str | os.PathLike) -> Path:
    """The config path, after checking that it and every ``_base_`` file it names exist and
    parse (mmengine reports a syntax error in any of them as ``File "<unknown>"``).

    Raises:
        FileNotFoundError: the config or a base file is missing (the message names it).
        ValueError: ``FILE:LINE: syntax error: ...`` of the first file that does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {str(path)!r} does not exist; configs live in '
                                'configs/<method>/<method>_<backbone>_<dataset>.py')
    _check_syntax(path, set())
    return path


def _check_syntax(path: Path, seen: set[Path]) -> None:
    """Compile ``path`` and, recursively, the ``.py`` files of its ``_base_``."""
    if path in seen or path.suffix != '.py':
        return
    seen.add(path)
    source = path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as err:
        raise ValueError(f'{path}:{err.lineno}: syntax error: {err.msg}') from None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], 'id', None) == '_base_'):
            bases = [n.value for n in ast.walk(node.value)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            for base in bases:
                file = (path.parent / base).resolve()
                if not file.is_file():
                    raise FileNotFoundError(f'{path}: _base_ file {base!r} does not exist '
                                            f'({file})')
                _check_syntax(file, seen)


def check_config_keys(cfg: Config, where: str) -> None:
    """Refuse a top-level key one typo away from a key the runner reads (mmengine ignores
    ``test_dataloadr`` and runs without it)."""
    for key in cfg.keys():
        if key in RUNNER_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            raise KeyError(f'{where}: {key!r} is not a config key the runner reads; did you '
                           f'mean {close[0]!r}?')


def scope_registries(cfg: Config) -> tuple[Registry, Registry]:
    """The model and dataset registries of the config's ``default_scope``: mmdet's for the
    detector configs, mmseg's (where denseclip registers) otherwise."""
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.registry import DATASETS as MMDET_DATASETS
        from mmdet.registry import MODELS as MMDET_MODELS
        return MMDET_MODELS, MMDET_DATASETS
    return MODELS, DATASETS


def check_dataset_configs(cfg: Config, where: str,
                          splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Check each ``<split>_dataloader.dataset`` as :func:`check_model_config` checks the
    model: a registered dataset type, its arguments, with the closest name for a typo."""
    datasets = scope_registries(cfg)[1]
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, Mapping) and isinstance(loader.get('dataset'), Mapping):
            check_model_config(loader['dataset'], where, f'{split}_dataloader.dataset',
                               registry=datasets)


def _known_types(key: str, registry=MODELS) -> list[str]:
    """Registered names that can fill ``key`` (by its role), else every name."""
    prefix = _ROLE_MODULES.get(key.rsplit('.', 1)[-1])
    names = [name for name, cls in registry.module_dict.items()
             if prefix is None or cls.__module__.startswith(prefix)]
    return sorted(names)


LAYER_CFG_KEYS = ('norm_cfg', 'act_cfg', 'conv_cfg', 'upsample_cfg', 'init_cfg')


def init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor arguments of ``cls``, following ``**kwargs`` into the ``__init__`` of
    the base classes it is passed on to (a subclass restating a few, the base the rest)."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        own = inspect.signature(klass.__init__).parameters
        for name, param in list(own.items())[1:]:  # without self
            if param.kind is not inspect.Parameter.VAR_KEYWORD:
                params.setdefault(name, param)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values()):
            return params
    # every __init__ up the chain takes **kwargs: anything goes
    return dict(params, kwargs=inspect.Parameter('kwargs', inspect.Parameter.VAR_KEYWORD))


def _lookup(name: str, registry: Registry) -> type | None:
    """``name`` in ``registry``, else in the task utilities of its scope (anchor generators,
    assigners, coders live there), else in mmseg's models, where denseclip registers the
    modules an mmdet model may hold (a CLIPViT's dense attention)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
    from mmseg.registry import TASK_UTILS

    task_utils = MMDET_TASK_UTILS if registry is MMDET_MODELS else TASK_UTILS
    for candidate in (registry, task_utils, MODELS):
        cls = candidate.get(name)
        if cls is not None:
            return cls
    return None


def check_model_config(cfg: Mapping, where: str, key: str = 'model', registry=MODELS) -> None:
    """Check a module config and every nested one: registered types, known argument names,
    required arguments present.

    Args:
        cfg: a dict with ``type`` (a registered name or a class) and the constructor's arguments.
        where: the config file, for messages.
        key: the config key of ``cfg``, for messages (``model``, ``model.backbone``, ...).
        registry: where ``type`` is looked up (``DATASETS`` for a dataset config).

    Raises:
        KeyError: an unregistered type (the message lists the registered ones of its role), an
            argument the class does not take (with the closest name), or a missing required one.
    """
    type_ = cfg.get('type')
    if type_ is None:
        raise KeyError(f'{where}: {key} has no type; known: {_known_types(key, registry)}')
    cls = _lookup(type_, registry) if isinstance(type_, str) else type_
    if cls is None:
        raise KeyError(f'{where}: {key}.type={type_!r} is not registered; known: '
                       f'{_known_types(key, registry)}')
    params = init_parameters(cls)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        for arg in cfg:
            if arg != 'type' and arg != '_scope_' and arg not in params:
                close = difflib.get_close_matches(arg, names, n=1)
                hint = f' (did you mean {close[0]!r}?)' if close else ''
                raise KeyError(f'{where}: {key}.{arg} is not a parameter of {cls.__name__}'
                               f'{hint}; parameters: {names}')
        missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in cfg]
        if missing:
            raise KeyError(f'{where}: {key} ({cls.__name__}) misses required arguments '
                           f'{missing}')
    for arg, value in cfg.items():
        # mmcv layer configs (norm_cfg=dict(type='SyncBN', requires_grad=True), act_cfg...) are
        # read by build_norm_layer & co., not constructors: their keys are not arguments
        if isinstance(value, Mapping) and 'type' in value and arg not in LAYER_CFG_KEYS:
            check_model_config(value, where, f'{key}.{arg}', registry)


def check_data(cfg: Config, where: str) -> None:
    """Check that the test dataset's folders and split file exist.

    A ``ToyWorldDataset`` with ``generate`` writes its split itself and is skipped.

    Raises:
        FileNotFoundError: naming the missing path, the ``data_root`` and how to prepare the
            dataset (:data:`DATA_PREPARATION`).
    """
    dataset = cfg.test_dataloader.dataset
    if dataset.get('generate') is not None:
        return
    root = Path(dataset.get('data_root') or '')
    how = DATA_PREPARATION.get(dataset.type, 'see the dataset class documentation')
    if not root.is_dir():
        raise FileNotFoundError(
            f"{where}: test_dataloader.dataset.data_root='{root}' ({root.resolve()}) does not "
            f'exist; {how}, or set --cfg-options test_dataloader.dataset.data_root=DIR')
    paths = [(f'data_prefix.{k}', root / v) for k, v in dataset.get('data_prefix', {}).items()]
    if dataset.get('ann_file'):
        paths.append(('ann_file', root / dataset.ann_file))
    for name, path in paths:
        if not path.exists():
            raise FileNotFoundError(
                f"{where}: {path} (test_dataloader.dataset.{name} under data_root='{root}') "
                f'does not exist; {how}')


def check_vocabulary(cfg: Config, where: str) -> None:
    """Check that the class-name file (or list) has as many classes as the test dataset:
    ``model.test_vocabulary`` where a trained segmentor has one, else ``model.vocabulary``.

    Raises:
        FileNotFoundError: the name file is missing.
        ValueError: the counts differ (the message names the file and both counts).
    """
    key = 'test_vocabulary' if cfg.model.get('test_vocabulary') is not None else 'vocabulary'
    vocabulary = cfg.model.get(key)
    if vocabulary is None:
        return
    if isinstance(vocabulary, (str, os.PathLike)):
        sep = cfg.model.get('name_sep')
        if sep is None:
            model_cls = scope_registries(cfg)[0].get(cfg.model.type)
            sep = inspect.signature(model_cls).parameters['name_sep'].default
        vocab = Vocabulary.from_file(vocabulary, sep=sep)
        what = f'model.{key}={str(vocabulary)!r}'
    elif isinstance(vocabulary, Sequence):
        vocab = Vocabulary.from_list(vocabulary)
        what = f'model.{key} (a list)'
    else:
        raise TypeError(f'{where}: model.{key} is {type(vocabulary).__name__}; expected a '
                        'name-file path or a list of classes')
    dataset = cfg.test_dataloader.dataset
    datasets = scope_registries(cfg)[1]
    dataset_cls = datasets.get(dataset.type)
    if dataset_cls is None:
        raise KeyError(f'{where}: test_dataloader.dataset.type={dataset.type!r} is not '
                       f'registered; known: {sorted(datasets.module_dict)}')
    classes = (dataset.get('metainfo') or {}).get('classes') or dataset_cls.METAINFO['classes']
    if vocab.num_classes != len(classes):
        raise ValueError(f'{where}: {what} has {vocab.num_classes} classes but the dataset '
                         f'{dataset.type} has {len(classes)}; use the name file written for '
                         'this dataset (denseclip/datasets/vocabularies/README.md)')


def check_config(cfg: Config, where: str) -> None:
    """Every check of a test run: top-level keys, the model and test dataset configs, the
    data folders, the vocabulary size."""
    check_config_keys(cfg, where)
    check_model_config(cfg.model, where, registry=scope_registries(cfg)[0])
    check_dataset_configs(cfg, where, splits=('test',))
    check_vocabulary(cfg, where)
    check_data(cfg, where)
