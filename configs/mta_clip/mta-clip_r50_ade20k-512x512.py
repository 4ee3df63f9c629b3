# MTA-CLIP RN50 on ADE20K-150 at 512 x 512, 160k iterations (anurag-198/MTA_CLIP@a62deff
# local_configs/r50_1.py, launched on 2 GPUs x 8 images):
#   bash tools/dist_train.sh configs/mta_clip/mta-clip_r50_ade20k-512x512.py 2
#   python tools/test.py configs/mta_clip/mta-clip_r50_ade20k-512x512.py --checkpoint CKPT
_base_ = [
    '../_base_/models/mta_clip_r50.py',
    '../_base_/datasets/ade20k_denseclip-512x512.py',  # the release's ade20k_clip_512.py
    '../_base_/schedules/mta_clip_160k.py',
]
train_dataloader = dict(batch_size=8, num_workers=8)  # r50_1.py: batch_size=8, num_workers=8
