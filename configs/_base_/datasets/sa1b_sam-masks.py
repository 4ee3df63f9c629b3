# PixelCLIP on any folder of images with segment-anything's automatic masks (no annotation file):
# GenerateMasks runs SAMMaskGenerator on each loaded image (cached on disk by image hash, so each
# image is segmented once) and every region becomes a mask. SAM's weights must be given:
#   --cfg-options train_dataloader.dataset.pipeline.1.generator.sam_checkpoint=/path/sam_vit_h.pth
# Not a released setting (the released masks are SA-1B's or DINO's); the rest is sa1b.py's.
_base_ = ['./sa1b.py']
train_dataloader = dict(
    num_workers=0,  # SAM runs in the main process, on the GPU when there is one
    persistent_workers=False,
    dataset=dict(
        ann_suffix=None,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='GenerateMasks', max_masks=512,
                 generator=dict(type='SAMMaskGenerator', backend='sam', sam_type='vit_h',
                                sam_checkpoint=None)),
            dict(type='Resize', scale=(1333, 1024), keep_ratio=True),
            dict(type='RandomCrop', crop_size={{_base_.crop_size}}),
            dict(type='PhotoMetricDistortion'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackMaskInputs'),
        ]))
