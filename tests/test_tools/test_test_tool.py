"""tools/test.py end to end on the toy world (the mIoU it saves equals one computed here from
its saved predictions and the ground truth), and its errors before the runner starts."""
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from denseclip.toy.world import TOY_CLASSES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'test.py'
NUM_IMAGES = 8


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('denseclip_test_tool', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy_weights(tmp_path_factory):
    """Seeded random weights of the toy CLIP's architecture: the check below is about the
    evaluation, so it must not depend on how well the toy CLIP was trained."""
    config = json.loads((REPO / 'denseclip' / 'toy' / 'toy_clip.json').read_text())
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('toy') / 'toy_random.safetensors'
    save_file(open_clip.model.CLIP(**config).state_dict(), str(path))
    return path


def independent_miou(pred_dir: Path, ann_dir: Path, num_classes: int) -> tuple[float, float]:
    """mIoU and aAcc (percent) over the dataset: per-class intersection and union summed over
    images, classes never present in prediction or label skipped (mmseg IoUMetric §1.6)."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    correct = total = 0
    for ann in sorted(ann_dir.glob('*.png')):
        gt = np.asarray(Image.open(ann)).astype(np.int64)
        pred = np.asarray(Image.open(pred_dir / ann.name)).astype(np.int64)
        assert pred.shape == gt.shape
        for k in range(num_classes):
            inter[k] += np.sum((pred == k) & (gt == k))
            union[k] += np.sum((pred == k) | (gt == k))
        correct += np.sum(pred == gt)
        total += gt.size
    seen = union > 0
    return 100 * float(np.mean(inter[seen] / union[seen])), 100 * correct / total


@pytest.mark.parametrize('method', ['sclip', 'naclip'])
def test_toy_world_miou_matches_saved_predictions(method, toy_weights, tmp_path):
    config = REPO / 'configs' / method / f'{method}_toy-vit-p16_toy.py'
    data_root, preds, out = tmp_path / 'toy_world', tmp_path / 'preds', tmp_path / 'metrics.json'
    show = tmp_path / 'show'
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(config), '--pretrained', str(toy_weights),
         '--work-dir', str(tmp_path / 'work'), '--out', str(out), '--save-preds', str(preds),
         '--show-dir', str(show),
         '--cfg-options', f'test_dataloader.dataset.data_root={data_root}',
         f'test_dataloader.dataset.generate.num_images={NUM_IMAGES}'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert len(list(preds.glob('*.png'))) == NUM_IMAGES
    assert len(list(show.glob('vis_data/vis_image/*.png'))) == NUM_IMAGES  # painted images
    miou, aacc = independent_miou(preds, data_root / 'ann_dir' / 'val', len(TOY_CLASSES))
    assert metrics['mIoU'] == pytest.approx(miou, abs=0.006)  # IoUMetric rounds to 0.01
    assert metrics['aAcc'] == pytest.approx(aacc, abs=0.006)
    assert f"mIoU: {metrics['mIoU']:.4f}" in result.stdout + result.stderr


def test_misspelled_key_fails_before_the_runner(tmp_path):
    config = REPO / 'configs' / 'sclip' / 'sclip_toy-vit-p16_toy.py'
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(config), '--work-dir', str(tmp_path),
         '--cfg-options', 'model.logit_scal=50'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 'model.logit_scal is not a parameter of OpenVocabSegmentor' in result.stderr
    assert not list(tmp_path.iterdir())  # nothing ran


def _errors(tool, caplog, argv):
    with caplog.at_level(logging.ERROR, logger='test'):
        code = tool.main(argv)
    return code, caplog.text


def test_missing_data_folder(tool, caplog, tmp_path):
    config = REPO / 'configs' / 'clearclip' / 'clearclip_vit-b16_coco-object.py'
    code, log = _errors(tool, caplog, [
        str(config), '--work-dir', str(tmp_path),
        '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path / "coco_stuff164k"}'])
    assert code == 1
    assert f"data_root='{tmp_path / 'coco_stuff164k'}'" in log
    assert 'tools/dataset_converters/coco_object.py' in log


def test_name_file_with_wrong_class_count(tool, caplog, tmp_path):
    config = REPO / 'configs' / 'sclip' / 'sclip_toy-vit-p16_toy.py'
    names = REPO / 'denseclip' / 'datasets' / 'vocabularies' / 'sclip' / 'cls_voc20.txt'
    code, log = _errors(tool, caplog, [str(config), '--work-dir', str(tmp_path),
                                       '--cfg-options', f'model.vocabulary={names}'])
    assert code == 1
    assert (f"model.vocabulary='{names}' has 20 classes but the dataset ToyWorldDataset has "
            f'{len(TOY_CLASSES)}') in log


def test_unregistered_dense_type(tool, caplog, tmp_path):
    config = REPO / 'configs' / 'sclip' / 'sclip_vit-b16_voc21.py'
    code, log = _errors(tool, caplog, [str(config), '--work-dir', str(tmp_path),
                                       '--cfg-options', 'model.backbone.dense.type=SCLIPAtention'])
    assert code == 1
    assert "model.backbone.dense.type='SCLIPAtention' is not registered" in log
    assert 'NACLIPAttention' in log


def test_missing_config(tool, caplog, tmp_path):
    code, log = _errors(tool, caplog, [str(tmp_path / 'sclip_vit-b16_voc99.py')])
    assert code == 1 and 'sclip_vit-b16_voc99.py' in log and 'does not exist' in log
