# PixelCLIP, CLIP ViT-B/16 (OpenAI), trained on SA-1B masks (5%), 10k iterations, batch 48
# (4 GPUs x 12); released:
#   sh run.sh configs/pixelclip_vit_base.yaml 4 output/
#   tools/dist_train.sh configs/pixelclip/pixelclip_vit-b16_sa1b.py 4
# The pixelclip_vit-b16_test-*.py configs test the checkpoint on the five benchmarks.
_base_ = [
    '../_base_/models/pixelclip_vit-b16.py',
    '../_base_/datasets/sa1b.py',
    '../_base_/schedules/pixelclip_10k.py',
]
