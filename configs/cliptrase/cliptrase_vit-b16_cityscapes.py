# CLIPtrase (Shao, Tian, Zhao, Su, ECCV 2024), OpenAI CLIP ViT-B/16, on Cityscapes (City).
# Settings: leaves162/CLIPtrase@2b7de61 has no Cityscapes entry in configs/dataset_cfg.py: the
# harness defaults of clip_self_correlation.py self_clip at image_size=224, our choice (reference
# notes §8).
# Published mIoU: about 21.3 (paper) [mem]; none in the README (reference notes §13).
_base_ = [
    '../_base_/models/cliptrase_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # no CLIPtrase list: mmseg's names, spaced like CLIPtrase's others; our choice
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 224: self_clip image_size=224 (Resize(224), then CenterCrop(224), which we skip)
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
