# ImageNet-Segmentation (gtsegs_ijcv.mat, 4,276 images, foreground masks) as TextSpan evaluates
# it (compute_segmentations.py@49f70f3): open_clip's eval transform on the image (short side
# 224, bicubic, centre crop), the mask squashed to 224x224 (nearest); metrics at 224x224.
# gt_resize='center_crop' aligns the mask with the cropped image instead (Deviation switch:
# the released 'squash' misaligns them on non-square images, reference notes §11(b)).
dataset_type = 'ImageNetSegDataset'
data_root = 'data/imagenet_seg'
test_pipeline = [
    dict(type='LoadImageNetSegSample', image_size=224, gt_resize='squash'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,  # --batch_size default
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='gtsegs_ijcv.mat',
                 pipeline=test_pipeline))
test_evaluator = dict(type='ForegroundSegMetric')  # pixAcc, mIoU (2 classes), mAP
test_cfg = dict(type='TestLoop')
