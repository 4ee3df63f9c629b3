# CAT-Seg (B), ViT-B/16 (KU-CVLAB/CAT-Seg@6d3a188 configs/vitb_384.yaml over config.yaml,
# cat_seg_model.py, modeling/transformer/model.py; trained_methods.md §2). Every setting of the
# released model and its sliding-window test (eval.sh) is here; leaf configs name the datasets.
model = dict(
    type='OpenVocabEncoderDecoder',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # CLIP_PRETRAINED "ViT-B/16"
        dense=dict(type='CATSegAttention'),  # forward_dense: v-path + [CLS] residual
        pos_interp='size',  # resized_pos_embed: bicubic 14x14 -> 24x24
        input_size=384,  # clip_resolution (384, 384): 24x24 tokens
        out_indices=(3, 7)),  # layer_indexes [3, 7]: guidance taps
    text_encoder=dict(frozen=True),  # then clip_finetune unfreezes q/v
    # TRAIN_CLASS_JSON datasets/coco.json; each test config sets test_vocabulary
    vocabulary='{{fileDirname}}/../../../denseclip/datasets/vocabularies/catseg/cls_coco_stuff.txt',
    prompt=dict(type='TemplatePrompt', templates=['A photo of a {} in the scene']),  # "single"
    synonyms=False,  # get_text_embeds: only the first of ', '-separated names
    clip_finetune='attention_qv',  # CLIP_FINETUNE "attention", both towers
    decode_head=dict(
        type='CATSegHead',
        embed_dim=512,  # TEXT_GUIDANCE_DIM / APPEARANCE_GUIDANCE_DIM 512
        guidance_channels=768,  # proj_dim: upsample1/2 input width
        num_prompts=1,  # prompt_channel = len(templates)
        hidden_dim=128,  # HIDDEN_DIMS
        num_layers=2,  # NUM_LAYERS
        num_heads=4,  # NUM_HEADS
        window_size=12,  # WINDOW_SIZES
        pool_size=(2, 2),  # POOLING_SIZES [2, 2] in training
        test_pool_size=(1, 1),  # eval.sh: POOLING_SIZES "[1,1]"
        pad_len=256,  # Aggregator pad_len
        appearance_guidance_dim=128,  # APPEARANCE_GUIDANCE_PROJ_DIM
        text_guidance_dim=128,  # TEXT_GUIDANCE_PROJ_DIM
        decoder_dims=(64, 32),  # DECODER_DIMS
        decoder_guidance_dims=(256, 128),  # DECODER_GUIDANCE_DIMS
        decoder_guidance_proj_dims=(32, 16),  # DECODER_GUIDANCE_PROJ_DIMS
        ignore_index=255,  # IGNORE_VALUE
        ignore_as_negative=True),  # released BCE: ignored pixels = all-zero targets, kept
    data_preprocessor=dict(
        type='mmseg.SegDataPreProcessor',
        mean=[122.7709383, 116.7460125, 104.09373615],  # CLIP_PIXEL_MEAN
        std=[68.5005327, 66.6321579, 70.3231630],  # CLIP_PIXEL_STD
        bgr_to_rgb=True,
        size=(384, 384),  # SIZE_DIVISIBILITY 384 on 384 crops
        pad_val=0,
        seg_pad_val=255),
    # inference_sliding_window (eval.sh SLIDING_WINDOW True): resize to 640x640, windows of
    # 384 at stride int(384 * (1 - 0.333)) = 256 (2x2), plus the image as one 384 view:
    # (windows + global) / 2 of sigmoid probabilities, then resized to the original size.
    resize_to=(640, 640),
    slide_crop=384,
    slide_stride=256,
    global_view=True,
    window_batch=4)
# The test views start from the short side at 640 (MIN_SIZE_TEST 640, MAX_SIZE_TEST 2560); the
# dataset configs' pipelines are replaced by this one in every CAT-Seg test config.
catseg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
catseg_wide_test_pipeline = [  # A-847, PC-459: labels above 255
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadWideAnnotations'),
    dict(type='PackSegInputs'),
]
