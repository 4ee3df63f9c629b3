"""CLIP-DINOiser on the toy world: the generated training scenes, the toy train config's
trainer and the shipped heads (seeded, CPU, no network)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from clip_dinoiser_helpers import ROOT
from mmengine.config import Config
from open_clip.constants import OPENAI_DATASET_MEAN

import denseclip.engine  # noqa: F401  (registration)
from denseclip.engine.data import ToyWorldImageFolder
from denseclip.registry import MODELS
from denseclip.toy import TOY_CLIP_DINOISER_HEADS, generate_scene
from denseclip.toy.world import scene_seed

CONFIGS = ROOT / 'configs' / 'clip_dinoiser'


def test_toy_world_image_folder_writes_and_reads_the_scenes(tmp_path):
    root = tmp_path / 'toy_unlabeled'
    data = ToyWorldImageFolder(root, num_images=3, seed=5, size=64, img_size=64,
                               color_jitter=0.0, flip_prob=0.0)
    assert len(data) == 3 and data.files[0].parent == root / 'img_dir' / 'train'
    for i in range(3):
        want = torch.from_numpy(generate_scene(scene_seed(5, i), 64).image)
        torch.testing.assert_close(data[i]['inputs'], want.permute(2, 0, 1).float() / 255)
    stamp = (root / 'toy_world.json').stat().st_mtime_ns
    assert len(ToyWorldImageFolder(root, num_images=3, seed=5, size=64)) == 3  # reused
    assert (root / 'toy_world.json').stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match='holds a split made with'):
        ToyWorldImageFolder(root, num_images=4, seed=5, size=64)


def test_toy_train_config_builds_the_trainer_on_the_toy_clip():
    cfg = Config.fromfile(str(CONFIGS / 'clip_dinoiser_toy-vit-p16_toy-train.py'))
    assert cfg.train_dataloader.dataset.seed != 0  # the evaluation split's seed
    model = MODELS.build(cfg.model)
    torch.testing.assert_close(model.dino_mean.flatten(), torch.tensor(OPENAI_DATASET_MEAN))
    # The teacher is the frozen CLIP's own tower: the same patch embedding.
    torch.testing.assert_close(model.dino.vit.patch_embed.proj.weight,
                               model.backbone.clip.visual.conv1.weight)
    images = torch.from_numpy(generate_scene(scene_seed(1, 0), 224).image)
    losses = model(images.permute(2, 0, 1)[None].float() / 255, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())


def test_shipped_toy_heads_load_into_the_toy_config():
    assert TOY_CLIP_DINOISER_HEADS.stat().st_size < 1_000_000
    cfg = Config.fromfile(str(CONFIGS / 'clip_dinoiser_toy-vit-p16_toy.py'))
    refiner = MODELS.build(cfg.model.feature_refiner)  # loads the heads strictly
    assert refiner.obj_proj.weight.shape == (64, 128, 3, 3)
    assert not refiner.apply_found  # the toy world has no background class
    assert np.isfinite(refiner.obj_proj.weight.detach().numpy()).all()
