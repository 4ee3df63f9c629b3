# MAFT+ (B) trained on COCO-Stuff-171 (openvocab_coco_2017_train_stuff_sem_seg) for 60k
# iterations, batch 8 (8 GPUs x 1):
#   tools/dist_train.sh configs/maft_plus/maft-plus_convnext-b_coco-stuff171.py 8
# The maft-plus_convnext-b_coco-stuff171_test-*.py configs test the checkpoint on the five
# benchmarks. Training views as the release's mask_former_semantic mapper with detectron2's input
# defaults (the MAFT+ configs set none): short side 800 (long at most 1333), no crop, no colour
# augmentation, horizontal flip; padded to a multiple of 32 by the data preprocessor.
_base_ = [
    '../_base_/models/maft_plus_convnext-b.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/schedules/maft_plus_60k.py',
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=800, max_size=1333),  # MIN/MAX_SIZE_TRAIN
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,  # x 8 GPUs = IMS_PER_BATCH 8
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline={{_base_.maft_plus_test_pipeline}}))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline={{_base_.maft_plus_test_pipeline}}))
val_evaluator = {{_base_.test_evaluator}}
