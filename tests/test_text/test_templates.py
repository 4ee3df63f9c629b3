import open_clip
import pytest

from denseclip.models.text import TEMPLATE_SETS, get_templates


def test_openai_imagenet_is_open_clip_80():
    got = get_templates('openai_imagenet')
    assert len(got) == 80
    assert got == [t('{}') for t in open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES]
    assert got[0] == 'a bad photo of a {}.' and got[-1] == 'a tattoo of the {}.'


def test_maskclip_is_80_plus_official_5():
    got = get_templates('maskclip')
    assert len(got) == 85
    assert got[:80] == get_templates('openai_imagenet')
    # chongzhou96/MaskCLIP tools/maskclip_utils/prompt_engineering.py@245d31f, entries 81-85
    assert got[80:] == [
        'there is a {} in the scene.', 'there is the {} in the scene.',
        'this is a {} in the scene.', 'this is the {} in the scene.',
        'this is one {} in the scene.'
    ]


def test_vild_and_none():
    vild = get_templates('vild')
    assert len(vild) == 14 and vild[1] == 'This is a photo of a {}'
    assert get_templates('none') == ['{}']
    assert get_templates('{}') == ['{}']
    assert get_templates('a photo of a {}.') == ['a photo of a {}.']


def test_every_set_formats_a_name():
    for name, templates in TEMPLATE_SETS.items():
        for template in templates:
            assert template.format('zebra').count('zebra') == 1, (name, template)


def test_explicit_list_is_copied():
    given = ['a {}.', 'the {}']
    got = get_templates(given)
    assert got == given and got is not given


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match=r"'imagenet'.*maskclip.*none.*openai_imagenet.*vild"):
        get_templates('imagenet')


@pytest.mark.parametrize('bad, error, message', [
    ([], ValueError, 'empty'),
    (['a photo of a car.'], ValueError, 'exactly one'),
    (['{} and {}'], ValueError, 'exactly one'),
    (['a {name}'], ValueError, 'exactly one'),
    (['a {'], ValueError, 'not a valid format string'),
    ([3], TypeError, 'must be a str'),
    (7, TypeError, 'set name or a sequence'),
])
def test_bad_templates(bad, error, message):
    with pytest.raises(error, match=message):
        get_templates(bad)

