"""Prompt template sets: the sentences a class name is written into before text encoding.

A template is a format string with exactly one ``{}`` placeholder for the name:
``'a photo of a {}.'.format('car')``. Named sets:

- ``'openai_imagenet'``: CLIP's 80 ImageNet templates (Radford et al., "Learning Transferable
  Visual Models From Natural Language Supervision", https://arxiv.org/abs/2103.00020), in
  OpenAI's order, taken from open_clip so the two can never drift apart. Used by SCLIP,
  ClearCLIP, NACLIP, ProxyCLIP, CLIPtrase and CLIP-DINOiser.
- ``'maskclip'``: MaskCLIP's 85, the 80 followed by five "... in the scene." templates.
- ``'vild'``: the 14 templates CLIPtrase's detectron2 version selects with
  ``CLIP_TEMPLATE_SET = "vild"``.
- ``'none'``: the raw name, ``'{}'``.
"""
import string
from collections.abc import Sequence
from typing import Union

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

__all__ = ['TEMPLATE_SETS', 'get_templates']

# open_clip stores the templates as callables; calling one with '{}' gives the format string.
OPENAI_IMAGENET: tuple[str, ...] = tuple(template('{}') for template in OPENAI_IMAGENET_TEMPLATES)

# Read from chongzhou96/MaskCLIP tools/maskclip_utils/prompt_engineering.py
# @245d31f809be9c1938f8f30561b6bf9ed033d746 (`prompt_templates`, entries 81-85; entries
# 1-80 there equal OPENAI_IMAGENET in the same order, checked by the tests).
MASKCLIP_EXTRA: tuple[str, ...] = (
    'there is a {} in the scene.',
    'there is the {} in the scene.',
    'this is a {} in the scene.',
    'this is the {} in the scene.',
    'this is one {} in the scene.',
)

# Read from leaves162/CLIPtrase cliptrase_d2/cliptrase/model/utils.py
# @8fb4d74195615d17d7f3f9438c1460972e9d19d1 (`PREDEFINED_TEMPLATES['vild']`). Kept verbatim,
# including the three templates without a final period.
VILD: tuple[str, ...] = (
    'a photo of a {}.',
    'This is a photo of a {}',
    'There is a {} in the scene',
    'There is the {} in the scene',
    'a photo of a {} in the scene',
    'a photo of a small {}.',
    'a photo of a medium {}.',
    'a photo of a large {}.',
    'This is a photo of a small {}.',
    'This is a photo of a medium {}.',
    'This is a photo of a large {}.',
    'There is a small {} in the scene.',
    'There is a medium {} in the scene.',
    'There is a large {} in the scene.',
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    'openai_imagenet': OPENAI_IMAGENET,
    'maskclip': OPENAI_IMAGENET + MASKCLIP_EXTRA,
    'vild': VILD,
    'none': ('{}',),
}


def _check_template(template: object, where: str) -> str:
    if not isinstance(template, str):
        raise TypeError(f'{where}: a template must be a str, got {type(template).__name__} '
                        f'{template!r}')
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as err:  # unbalanced braces
        raise ValueError(f'{where}: template {template!r} is not a valid format string '
                         f'({err}); write the name as {{}} and a literal brace doubled') from err
    if fields != ['']:
        raise ValueError(f'{where}: template {template!r} must contain exactly one {{}} '
                         f'placeholder for the class name, found {len(fields)} field(s) {fields}')
    return template


def get_templates(templates: Union[str, Sequence[str]]) -> list[str]:
    """Resolve a template set.

    Args:
        templates: a set name (``'openai_imagenet'``, ``'maskclip'``, ``'vild'``, ``'none'``),
            a single template containing ``{}`` (``'{}'``, ``'a photo of a {}.'``), or an
            explicit sequence of templates.

    Returns:
        The T templates as a new list of format strings, each with one ``{}``.

    Raises:
        KeyError: an unknown set name (the message lists the valid names).
        ValueError: an empty list, or a template without exactly one ``{}``.
        TypeError: a template that is not a string.
    """
    if isinstance(templates, str):
        if '{' in templates:
            return [_check_template(templates, 'get_templates')]
        if templates not in TEMPLATE_SETS:
            raise KeyError(f'get_templates: unknown template set {templates!r}; known: '
                           f'{sorted(TEMPLATE_SETS)}, or pass a list of format strings with {{}}')
        return list(TEMPLATE_SETS[templates])
    if not isinstance(templates, Sequence):
        raise TypeError(f'get_templates: expected a set name or a sequence of templates, got '
                        f'{type(templates).__name__}')
    if len(templates) == 0:
        raise ValueError('get_templates: the template list is empty; pass at least one template '
                         "such as '{}' or a set name")
    return [_check_template(t, f'get_templates: templates[{i}]') for i, t in enumerate(templates)]
