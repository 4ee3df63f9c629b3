# The CLIPtrase harness (leaves162/CLIPtrase clip_self_correlation.py@2b7de61, `self_clip` at
# image_size=224 as `self_clip_test` runs it; reference notes §8): OpenAI ViT-B/16 whose last
# block sums the q-q, k-k and v-v attention softmaxes (residual and FFN kept), DINO-style
# position-embedding interpolation, 80 ImageNet templates, the whole image in one pass, logit
# scale 100, argmax with no threshold, then the region step: DBSCAN (eps 0.7, min_samples 3) on
# the rows of block 11's recalibrated self-correlation, a majority vote in each cluster region.
# The README's 336 row: S = 336 in each leaf's Resize and patch_refiner preset=336 (DBSCAN eps
# 1.1, min_samples 7), as `self_clip(..., image_size=336, eps=1.1, min=7)`.
# Deviation: the script resizes the short side to 224 (PIL bicubic) and centre-crops image and
# GT to 224x224, so only the central square is scored; we resize the short side (mmseg,
# bilinear) and score the whole image at its original size, as every harness here does. It also
# scores VOC's boundary pixels (255) as background, where IoUMetric ignores them, and skips
# images with no labelled pixel.
# S, the short side of the Python API and the demos (method='cliptrase'): clip_self_correlation.py image_size=224.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 224
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        # clip_utils.load('ViT-B/16'): the OpenAI archive, QuickGELU; fp32, as model.py
        # build_model has convert_weights commented out
        pretrained='openai',
        dense=dict(type='CLIPtraseAttention'),  # model.py block 12, self_qk_weight=True
        # interpolate_pos_encoding (+0.1); the identity on the script's 224x224 crops
        pos_interp='scale_factor'),
    vocabulary=None,  # each dataset config names its class-name file
    name_sep=', ',  # our files: configs/dataset_cfg.py lists written out (vocabularies/README.md)
    templates='openai_imagenet',  # dataset_cfg.py prompt_templates: the 80, in the same order
    logit_scale=100.0,  # clip.logit_scale.exp()
    prob_thd=0.0,
    area_thd=None,
    slide_crop=0,  # one forward pass per image
    # conv1 (stride 16) drops a remainder below a whole patch; the script's crops have none
    pad_to_patch=False,
    # self_clip: DBSCAN(eps=0.7, min_samples=3), 4x upsampling, median filter 7, vote
    patch_refiner=dict(type='CLIPtraseRegionRefiner', mode='vote', preset=224,
                       cls_product=False),
    refiner=None)  # README: no post-processing such as dense CRF
