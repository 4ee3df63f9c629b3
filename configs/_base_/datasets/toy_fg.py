# Single-object toy scenes (denseclip/toy/world.py generate_scene(scene_seed(seed, i),
# num_objects=1)): one thing on textured stuff, foreground = the thing. Written once to
# data_root/ann_file in ImageNet-Segmentation's .mat layout, then read and scored exactly as
# ImageNet-Segmentation (imagenet_seg.py: 224 crop, squashed mask; scenes are square, so the
# mask is aligned either way).
_base_ = ['./imagenet_seg.py']
test_dataloader = dict(
    num_workers=0,
    dataset=dict(_delete_=True,  # another dataset type and its own generation arguments
                 type='ToyForegroundDataset', data_root='data/toy_fg',
                 ann_file='toy_fg_n100_seed0_224.mat',
                 generate=dict(num_images=100, seed=0, size=224),
                 pipeline={{_base_.test_pipeline}}))
