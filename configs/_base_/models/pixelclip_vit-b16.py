# PixelCLIP, CLIP ViT-B/16 (cvlab-kaist/PixelCLIP@42f5c9c configs/pixelclip_vit_base.yaml over
# pixelclip/config.py, pixelclip/pixelclip.py, modeling/transformer/pixelclip_predictor.py;
# trained_methods.md §4). Every model setting of the released training and test (eval.sh) is
# here; dataset configs add the masks and the test vocabulary.
model = dict(
    type='PixelCLIPSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # CLIP_PRETRAINED "ViT-B/16" (OpenAI)
        dense=dict(type='CATSegAttention'),  # forward_dense: v-path + [CLS] residual
        pos_interp='size'),  # resized_pos_embed: bicubic 14x14 -> 20x20
    clip_resolution=(320, 320),  # CLIP_RESOLUTION: student, teacher and test input
    visual_finetune='attention',  # CLIP_FINETUNE "attention": "attn" params + positional emb.
    text_encoder=dict(frozen=True),  # the text tower is frozen
    cluster_prompt=dict(
        type='LearnedClassNames',
        num_names=64,  # NUM_CLASSES
        name_length=4,  # PROMPT_LENGTH
        template='A photo of a {} in the scene',  # PROMPT_ENSEMBLE_TYPE "single" in training
        seed=0),  # torch.manual_seed(0); randint(vocab - 10)
    ema_momentum=0.999,  # momentum_update alpha
    strong_view=dict(type='StrongView'),  # INPUT.STRONG_AUG True
    # mask_source: unset, masks come from the pipeline (SA-1B); the DINO configs set one
    decode_head=dict(
        type='PixelCLIPHead',
        conv_head=dict(type='ConvHead', channels=(64, 64, 32)),  # ConvHead mid_channels
        eps=100.0,  # MODEL.EPS (ViT)
        mask_size=(256, 256),  # MASK_RESOLUTION
        sinkhorn_iters=3,  # distributed_sinkhorn n_iters
        test_size=(64, 64)),  # test: features bilinearly upsampled to 64 x 64
    # test: PROMPT_ENSEMBLE_TYPE imagenet_select (eval.sh); each test config names the classes
    prompt=dict(
        type='TemplatePrompt',
        templates=[
            'itap of a {}.', 'a bad photo of the {}.', 'a origami {}.',
            'a photo of the large {}.', 'a {} in a video game.', 'art of the {}.',
            'a photo of the small {}.', 'A photo of a {} in the scene'
        ]),
    # TEST_CLASS_JSON in training: ADE-150 (the released validation set)
    vocabulary='{{fileDirname}}/../../../denseclip/datasets/vocabularies/catseg/cls_ade150.txt',
    # Deviation: a class with synonyms scores the max over its names; the released code averages
    # the names' embeddings per template.
    synonyms=True,
    name_sep=', ',  # name files: synonyms split by ', '
    data_preprocessor=dict(
        type='mmseg.SegDataPreProcessor',
        mean=[122.7709383, 116.7460125, 104.09373615],  # CLIP_PIXEL_MEAN
        std=[68.5005327, 66.6321579, 70.3231630],  # CLIP_PIXEL_STD
        bgr_to_rgb=True,
        size=(640, 640),  # the training crop (INPUT.CROP.SIZE)
        pad_val=0,
        seg_pad_val=255),
    slide_crop=0,  # the whole image in one view (no sliding window)
    logit_scale=100.0)  # only shapes reported probabilities; labels are the argmax of cosines
# MIN_SIZE_TEST 640, MAX_SIZE_TEST 2560: the test configs' pipeline.
pixelclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
