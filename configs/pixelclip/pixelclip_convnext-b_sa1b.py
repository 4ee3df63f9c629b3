# PixelCLIP, OpenCLIP ConvNeXt-B (convnext_base_w_320, laion_aesthetic_s13b_b82k), trained on
# SA-1B masks (5%), 10k iterations, batch 48 (4 GPUs x 12); released:
#   sh run.sh configs/pixelclip_convnext_base.yaml 4 output/
#   tools/dist_train.sh configs/pixelclip/pixelclip_convnext-b_sa1b.py 4
# The pixelclip_convnext-b_test-*.py configs test the checkpoint on the five benchmarks.
_base_ = [
    '../_base_/models/pixelclip_convnext-b.py',
    '../_base_/datasets/sa1b.py',
    '../_base_/schedules/pixelclip_10k.py',
]
