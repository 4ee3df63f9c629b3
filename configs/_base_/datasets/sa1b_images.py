# SA-1B images without their masks, for PixelCLIP's MODEL.DINO runs (the mapper skips the
# annotations; the model clusters DINO features into masks). Any folder of images works the same
# way: data_prefix.img_path is searched recursively. The rest is sa1b.py's.
_base_ = ['./sa1b.py']
train_dataloader = dict(
    dataset=dict(
        ann_suffix=None,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(1333, 1024), keep_ratio=True),
            dict(type='RandomCrop', crop_size={{_base_.crop_size}}),
            dict(type='PhotoMetricDistortion'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs'),
        ]))
