"""Training CLIP-DINOiser's two heads (reference notes: trained_methods.md §6; released
``train.py``, ``models/clip_dinoiser/clip_dinoiser.py``, ``configs/clip_dinoiser.yaml``
@a954aae). Inference is :class:`~denseclip.models.refiners.CLIPDINOiserRefiner`.

Call graph (mmengine ``BaseModel``)::

    train_step(data) -> forward(inputs, mode='loss') -> loss(inputs)
        inputs (B, 3, H, W) in [0, 1]
        ├─ CLIP-normalise -> frozen CLIPViT: embed, blocks[:L-3], G = LN2 inside blocks[-3]
        ├─ normalise with dino.mean/std -> frozen DINO: last block's q, k, v
        │    ├─ correlation targets 1[cos(v_i, v_j) >= γ]                   (B, N, N)
        │    └─ saliency module -> 1[s > 0.5] at the CLIP grid              (B, 1, h, w)
        └─ refiner.obj_proj(G): cosines, negatives set to 0, as BCE logits -> loss_corr
           refiner.bkg_decoder(G/‖G‖): BCE logits                          -> loss_bkg

Only ``refiner`` (obj_proj, bkg_decoder) is trained and checkpointed: the frozen teachers are
rebuilt from the config, so they are left out of ``state_dict`` and not expected on load.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor

from denseclip.engine.checkpoint import exclude_from_state_dict
from denseclip.engine.teachers import LastBlockQKV
from denseclip.models.refiners.clip_dinoiser import (background_logits, block_ln2_output,
                                                     object_correlations)
from denseclip.registry import MODELS

__all__ = ['dino_correlation_targets', 'correlation_loss', 'saliency_targets',
           'CLIPDINOiserTrainer']

_TEACHERS = ('backbone.', 'dino.')


def dino_correlation_targets(out: LastBlockQKV, gamma: float) -> Tensor:
    """Binarised DINO value correlations (released ``get_dino_corrs`` with
    ``enc_type_feats='v'``, then ``dino_corrs > 0`` in train.py).

    Args:
        out: the DINO teacher's last block; values (B, nh, 1+N, hd).
        gamma: correlations below it are zeroed (released: the model's gamma, 0.2).

    Returns:
        (B, N, N) float, 1 where cos(v_i, v_j) >= gamma (and > 0).
    """
    v = out.v[:, :, 1:].transpose(1, 2).flatten(2)  # (B, N, nh*hd), heads concatenated
    v = F.normalize(v, dim=-1)
    corr = v @ v.transpose(1, 2)  # (B, N, N)
    return (corr.masked_fill(corr < gamma, 0.0) > 0).float()


def correlation_loss(pred: Tensor, target: Tensor) -> Tensor:
    """BCE-with-logits of predicted cosines against the DINO targets (train.py).

    The cosines themselves are the logits, after ``pred[pred < 0] = 0``; so sigmoid(logit) lies in
    [0.5, 0.73] and the loss cannot saturate (trained_methods.md §6), as released.

    Args:
        pred: (B, N, N) predicted correlations in [-1, 1].
        target: (B, N, N) in {0, 1}.
    """
    return F.binary_cross_entropy_with_logits(pred.masked_fill(pred < 0, 0.0), target)


def saliency_targets(saliency: Tensor, grid: tuple[int, int]) -> Tensor:
    """Hard background-head targets: saliency resized to the CLIP grid, then > 0.5.

    Args:
        saliency: (B, 1, h', w') foreground scores in [0, 1].
        grid: the CLIP patch grid (h, w).

    Returns:
        (B, 1, h, w) float in {0, 1}.
    """
    if tuple(saliency.shape[-2:]) != tuple(grid):
        # The released code resizes FOUND's map with T.functional.resize (bilinear).
        saliency = F.interpolate(saliency, size=grid, mode='bilinear', align_corners=False,
                                 antialias=True)
    return (saliency > 0.5).float()


@MODELS.register_module()
class CLIPDINOiserTrainer(BaseModel):
    """Frozen CLIP and DINO teachers, trainable CLIP-DINOiser heads.

    Args:
        backbone: the CLIP, ``CLIPViT`` with ``dense=dict(type='MaskCLIPAttention')`` as at
            inference (released: OpenCLIP ViT-B-16 ``laion2b_s34b_b88k``).
        dino: the DINO teacher, ``DINOTeacher`` (released: DINO ViT-B/16); images are
            normalised with its ``mean``/``std`` (ImageNet's unless the config sets them).
        saliency: a module mapping the DINO teacher's output to (B, 1, h, w) foreground scores,
            e.g. ``FOUNDSeedSaliency``.
        refiner: the trained heads, ``CLIPDINOiserRefiner`` (default settings if None).
        dino_gamma: threshold of the DINO correlation targets (released: gamma, 0.2).
        data_preprocessor: mmengine data preprocessor (default: move to device only; images
            are normalised here, once for CLIP and once for DINO).
    """

    def __init__(self, backbone: dict, dino: dict, saliency: dict, refiner: dict | None = None,
                 dino_gamma: float = 0.2, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.dino = MODELS.build(dino)
        self.saliency = MODELS.build(saliency)
        self.refiner = MODELS.build(refiner or dict(type='CLIPDINOiserRefiner'))
        if self.refiner.obj_proj.in_channels != self.backbone.width:
            raise ValueError(f'CLIPDINOiserTrainer: model.refiner.in_channels='
                             f'{self.refiner.obj_proj.in_channels} but the CLIP image tower is '
                             f'{self.backbone.width} wide')
        if self.dino.patch_size != self.backbone.patch_size:
            raise ValueError(f'CLIPDINOiserTrainer: DINO patch size {self.dino.patch_size} != '
                             f'CLIP patch size {self.backbone.patch_size}; the correlation '
                             'targets need the same patch grid')
        self.backbone.requires_grad_(False)
        self.dino.requires_grad_(False)
        self.dino_gamma = dino_gamma
        for name, mean, std in (('clip', OPENAI_DATASET_MEAN, OPENAI_DATASET_STD),
                                ('dino', self.dino.mean, self.dino.std)):
            self.register_buffer(f'{name}_mean', torch.tensor(mean)[:, None, None], False)
            self.register_buffer(f'{name}_std', torch.tensor(std)[:, None, None], False)
        exclude_from_state_dict(self, _TEACHERS)

    def train(self, mode: bool = True) -> CLIPDINOiserTrainer:
        super().train(mode)
        self.backbone.eval()
        self.dino.eval()
        return self

    def clip_guidance(self, images: Tensor) -> Tensor:
        """G (B, D, h, w) for CLIP-normalised images.

        Deviation: the released forward_pass runs the whole MaskCLIP forward, but only G enters
        the losses, so the trunk stops at the guidance block (same losses, less compute).
        """
        blocks = self.backbone.blocks
        index = self.refiner.guidance_block % len(blocks)
        x, grid = self.backbone.embed(images)
        for block in blocks[:index]:
            x = block(x)
        return block_ln2_output(blocks[index], x, grid)

    def loss(self, inputs: Tensor) -> dict[str, Tensor]:
        """Both BCE losses (train.py: total = loss_corr + loss_bkg, unweighted).

        Args:
            inputs: (B, 3, H, W) images in [0, 1].
        """
        with torch.no_grad():
            guidance = self.clip_guidance((inputs - self.clip_mean) / self.clip_std)
            dino = self.dino((inputs - self.dino_mean) / self.dino_std)
            grid = tuple(guidance.shape[-2:])
            if tuple(dino.grid) != grid:
                raise ValueError(f'CLIPDINOiserTrainer: DINO grid {dino.grid} != CLIP grid {grid}')
            corr_target = dino_correlation_targets(dino, self.dino_gamma)
            bkg_target = saliency_targets(self.saliency(dino), grid)
        pred = object_correlations(self.refiner.obj_proj(guidance))  # (B, N, N)
        bkg = background_logits(self.refiner.bkg_decoder, guidance)  # (B, 1, h, w)
        return dict(loss_corr=correlation_loss(pred, corr_target),
                    loss_bkg=F.binary_cross_entropy_with_logits(bkg, bkg_target))

    def forward(self, inputs: Tensor, data_samples: list | None = None,
                mode: str = 'loss') -> dict[str, Tensor]:
        if mode != 'loss':
            raise ValueError(f"CLIPDINOiserTrainer: mode={mode!r}; it only trains "
                             "(mode='loss'). Evaluate the exported heads with "
                             "OpenVocabSegmentor and CLIPDINOiserRefiner(checkpoint=...)")
        return self.loss(inputs)
