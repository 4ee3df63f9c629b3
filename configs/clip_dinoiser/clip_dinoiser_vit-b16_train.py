# Training CLIP-DINOiser's two conv heads (Wysoczańska et al., ECCV 2024; released train.py and
# configs/clip_dinoiser.yaml @a954aae; trained_methods.md §6) on unlabelled images:
#   tools/train.py configs/clip_dinoiser/clip_dinoiser_vit-b16_train.py \
#       --cfg-options train_dataloader.dataset.data_root=data/imagenet/train
# writes work_dirs/<config>/clip_dinoiser_heads.safetensors for CLIPDINOiserRefiner(checkpoint=).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/schedules/clip_dinoiser_6300it.py',
]
custom_imports = dict(
    imports=['denseclip'],
    allow_failed_imports=False)
runner_type = 'AtomicCheckpointRunner'  # atomic checkpoints, weights_only resume
model = dict(
    type='CLIPDINOiserTrainer',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='laion2b_s34b_b88k',  # configs/maskclip.yaml decode_head.pretrained
        dense=dict(type='MaskCLIPAttention'),
        pos_interp='size'),  # MaskClip.resize_pos_embed: bicubic to the target grid
    # DINO ViT-B/16 (FOUND model.py get_vit_encoder('vit_base', 'dino', 16)); offline, pass the
    # downloaded dino_vitbase16_pretrain.pth as pretrained='/path/...'.
    dino=dict(type='DINOTeacher', model='vit_base_patch16_224.dino', pretrained='timm'),
    # Deviation: the released target is FOUND's trained decoder (DINO ViT-S/8); we use FOUND's
    # training-free background discovery on the same DINO ViT-B/16 (denseclip/engine/teachers.py).
    saliency=dict(type='FOUNDSeedSaliency', bkg_threshold=0.3),  # FOUND bkg_th
    refiner=dict(
        type='CLIPDINOiserRefiner',
        in_channels=768,  # in_size for feats_idx != 'final'
        proj_channels=256,  # in_dim: 256
        gamma=0.2,  # gamma: 0.2
        guidance_block=-3),  # feats_idx: -3
    dino_gamma=0.2)  # get_dino_corrs uses the same gamma
train_dataloader = dict(
    batch_size=16,  # batch_size: 16 (per process: divide by the number of GPUs)
    num_workers=4,  # num_workers: 4
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='UnlabeledImageFolder',
        data_root='data/imagenet/train',  # data: ImageNet; any ImageFolder tree works
        img_size=448,  # im_size: 448
        color_jitter=0.5,  # T.ColorJitter(0.5): brightness
        flip_prob=0.5,  # T.RandomHorizontalFlip(p=0.5)
        subset_size=1000,  # ds_size: 1000, drawn with replacement
        subset_seed=0))  # seed: 0
default_hooks = dict(
    param_scheduler=dict(type='ParamSchedulerHook'),
    # The released code saves only at the end; we save (atomically) every 500 iterations and keep
    # two, so a killed run resumes with `tools/train.py CONFIG --resume`.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [
    dict(type='ExportWeightsHook', module='refiner', filename='clip_dinoiser_heads.safetensors'),
]
# default_runtime.py's test settings belong to evaluation configs; a training run has no test set.
test_cfg = None
test_evaluator = None
