# ZSGNet VG S1 (vg_split test_balanced_c3).
_base_ = ['./grounding_zsgnet.py']
test_dataloader = dict(dataset=dict(
    ann_file='ds_csv_ann/vg_split/csv_dir/test_balanced_c3.csv',
    data_prefix=dict(img_path='vg')))
