"""denseclip.utils.config_checks: each mistake fails with a message naming it and the fix."""
from pathlib import Path

import pytest
from mmengine.config import Config

from denseclip.utils import (check_config, check_config_file, check_config_keys, check_data,
                             check_dataset_configs, check_model_config, check_vocabulary)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
VOC21 = str(CONFIGS / 'sclip' / 'sclip_vit-b16_voc21.py')


@pytest.fixture
def cfg():
    return Config.fromfile(VOC21)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config file '.*nope\.py' does not exist"):
        check_config_file(tmp_path / 'nope.py')


def test_misspelled_segmentor_key(cfg):
    cfg.merge_from_dict({'model.logit_scal': 50})
    with pytest.raises(KeyError, match=r"x\.py: model\.logit_scal is not a parameter of "
                       r"OpenVocabSegmentor \(did you mean 'logit_scale'\?\)"):
        check_model_config(cfg.model, 'x.py')


def test_misspelled_backbone_key(cfg):
    cfg.merge_from_dict({'model.backbone.pos_intrp': 'size'})
    with pytest.raises(KeyError, match=r"model\.backbone\.pos_intrp is not a parameter of "
                       r"CLIPViT \(did you mean 'pos_interp'\?\)"):
        check_model_config(cfg.model, 'x.py')


def test_unregistered_dense_type_lists_the_dense_types(cfg):
    cfg.merge_from_dict({'model.backbone.dense.type': 'SCLIPAtention'})
    with pytest.raises(KeyError) as info:
        check_model_config(cfg.model, 'x.py')
    message = info.value.args[0]
    assert "x.py: model.backbone.dense.type='SCLIPAtention' is not registered; known:" in message
    for name in ('VanillaAttention', 'MaskCLIPAttention', 'SCLIPAttention',
                 'ClearCLIPAttention', 'NACLIPAttention'):
        assert name in message
    assert 'CLIPViT' not in message  # only the types that fit the key


def test_unknown_argument_of_a_dense_type(cfg):
    cfg.merge_from_dict({'model.backbone.dense': dict(type='NACLIPAttention', sigm=3.0)})
    with pytest.raises(KeyError, match=r"model\.backbone\.dense\.sigm is not a parameter of "
                       r"NACLIPAttention \(did you mean 'sigma'\?\)"):
        check_model_config(cfg.model, 'x.py')


def test_name_file_with_another_class_count(cfg, tmp_path):
    names = tmp_path / 'cls_few.txt'
    names.write_text('background\ncat\ndog\n')
    cfg.model.vocabulary = str(names)
    with pytest.raises(ValueError) as info:
        check_vocabulary(cfg, 'x.py')
    message = info.value.args[0]
    assert str(names) in message
    assert 'has 3 classes but the dataset PascalVOCDataset has 21' in message


def test_missing_name_file(cfg, tmp_path):
    cfg.model.vocabulary = str(tmp_path / 'missing.txt')
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        check_vocabulary(cfg, 'x.py')


def test_missing_data_root_names_it_and_the_fix(cfg, tmp_path):
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'VOC2012')
    with pytest.raises(FileNotFoundError) as info:
        check_data(cfg, 'x.py')
    message = info.value.args[0]
    assert f"data_root='{tmp_path / 'VOC2012'}'" in message
    assert 'VOCtrainval_11-May-2012.tar' in message and 'model_zoo.md' in message


def test_missing_sub_folder_names_it(cfg, tmp_path):
    (tmp_path / 'JPEGImages').mkdir()
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'SegmentationClass \(test_dataloader\.dataset'
                       r'\.data_prefix\.seg_map_path'):
        check_data(cfg, 'x.py')


def test_coco_object_hint_names_the_converter():
    cfg = Config.fromfile(str(CONFIGS / 'sclip' / 'sclip_vit-b16_coco-object.py'))
    cfg.test_dataloader.dataset.data_root = '/nonexistent/coco_stuff164k'
    with pytest.raises(FileNotFoundError, match='tools/dataset_converters/coco_object.py'):
        check_data(cfg, 'x.py')


def test_toy_world_needs_no_data():
    cfg = Config.fromfile(str(CONFIGS / 'sclip' / 'sclip_toy-vit-p16_toy.py'))
    cfg.test_dataloader.dataset.data_root = '/nonexistent/toy'
    check_config(cfg, 'x.py')  # generated on first use


def test_syntax_error_names_the_file_and_line(tmp_path):
    """mmengine reports it as File "<unknown>"; the check names the base file and its line."""
    (tmp_path / 'base.py').write_text('model = dict(\n    type="X",\n    oops=(1,\n')
    (tmp_path / 'leaf.py').write_text("_base_ = ['./base.py']\nmodel = dict(type='Y')\n")
    with pytest.raises(ValueError, match=r'base\.py:3: syntax error'):
        check_config_file(tmp_path / 'leaf.py')
    (tmp_path / 'orphan.py').write_text("_base_ = ['./gone.py']\n")
    with pytest.raises(FileNotFoundError, match=r"orphan\.py: _base_ file './gone\.py' does not "
                                                r'exist'):
        check_config_file(tmp_path / 'orphan.py')


def test_misspelled_top_level_key(cfg):
    cfg.test_dataloadr = cfg.test_dataloader
    with pytest.raises(KeyError, match=r"x\.py: 'test_dataloadr' is not a config key the "
                                       r"runner reads; did you mean 'test_dataloader'\?"):
        check_config_keys(cfg, 'x.py')
    check_config_keys(Config.fromfile(VOC21), 'x.py')  # config variables like crop_size pass


def test_misspelled_dataset_argument(cfg):
    cfg.merge_from_dict({'test_dataloader.dataset.data_rot': 'data/voc'})
    with pytest.raises(KeyError, match=r"test_dataloader\.dataset\.data_rot is not a parameter "
                                       r"of PascalVOCDataset \(did you mean 'data_root'\?\)"):
        check_config(cfg, 'x.py')


@pytest.mark.parametrize('leaf', sorted(
    str(p.relative_to(CONFIGS)) for p in CONFIGS.glob('*/*.py')
    if 'train_dataloader' in Config.fromfile(str(p))))
def test_training_configs_validate_on_their_test_set(leaf):
    """Every split's dataset config checks out, and validation runs on the test images with the
    test pipeline (three training dataset files set val_dataloader to a partial dict, which
    mmengine kept partial: the runner failed to build the val loader at train start)."""
    cfg = Config.fromfile(str(CONFIGS / leaf))
    check_config_keys(cfg, leaf)
    check_dataset_configs(cfg, leaf)
    if cfg.get('val_dataloader') is None:  # CLIP-DINOiser trains on unlabelled images
        assert cfg.get('val_cfg') is None and cfg.get('val_evaluator') is None
        return
    val, test = cfg.val_dataloader.dataset, cfg.test_dataloader.dataset
    assert val.type == test.type and val.get('data_prefix') == test.get('data_prefix')
    assert val.pipeline == test.pipeline and val.get('data_root') == test.get('data_root')
