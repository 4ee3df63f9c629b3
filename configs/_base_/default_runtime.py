# Runtime shared by every benchmark config: mmseg's configs/_base_/default_runtime.py, plus the
# import that registers denseclip's modules and the hooks a test run uses. The test loop and
# metric come with each dataset config.
default_scope = 'mmseg'
custom_imports = dict(imports=['denseclip'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    # draw=False: tools/test.py --show-dir turns it on, as mmseg's tools/test.py does.
    visualization=dict(type='SegVisualizationHook', interval=1),
)
