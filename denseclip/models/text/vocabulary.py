"""Vocabularies: the classes a segmenter may predict, each named by one or more synonyms.

Every name becomes its own text query; a class scores the max over its queries (SCLIP
``postprocess_result``, see reference notes §1.2). Names are kept exactly as given, spaces and
case included: the name files' quirks (``trafficlight``, ClearCLIP's leading spaces) are part
of each paper's protocol.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

__all__ = ['Vocabulary']

ClassSpec = Union[str, Sequence[str]]


@dataclass(frozen=True)
class Vocabulary:
    """K classes, each a tuple of one or more names; the first name is the class name.

    Build one with :meth:`from_list`, :meth:`from_file` or :meth:`from_string`; the
    constructor itself takes the normalised form ``((name, ...), ...)`` and validates it.
    """

    classes: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if len(self.classes) == 0:
            raise ValueError('Vocabulary: no classes given; expected at least one class name')
        first_seen: dict[tuple[str, ...], int] = {}
        for k, names in enumerate(self.classes):
            if not isinstance(names, tuple) or len(names) == 0:
                raise ValueError(f'Vocabulary: class {k} is {names!r}; expected a non-empty '
                                 'tuple of names')
            for name in names:
                if not isinstance(name, str):
                    raise TypeError(f'Vocabulary: class {k} has a name of type '
                                    f'{type(name).__name__} ({name!r}); names must be str')
                if not name.strip():
                    raise ValueError(f'Vocabulary: class {k} {names!r} has an empty name')
            # Classes may share a first name (ADE20K-847 has two 'screen's, told apart by
            # their other names); the very same class twice is an error.
            if names in first_seen:
                raise ValueError(f"Vocabulary: duplicate class {', '.join(names)!r} at positions "
                                 f'{first_seen[names]} and {k}; merge them into one class '
                                 'with synonyms instead')
            first_seen[names] = k

    @classmethod
    def from_list(cls, classes: Sequence[ClassSpec]) -> 'Vocabulary':
        """``['road', 'car', ['person', 'pedestrian']]``: a string or a list of synonyms each."""
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise TypeError(f'Vocabulary.from_list: expected a list of classes, got '
                            f'{type(classes).__name__} {classes!r}; for a comma-separated '
                            'string use Vocabulary.from_string')
        specs = []
        for k, spec in enumerate(classes):
            if isinstance(spec, str):
                specs.append((spec,))
            elif isinstance(spec, Sequence):
                specs.append(tuple(spec))
            else:
                raise TypeError(f'Vocabulary.from_list: class {k} is {type(spec).__name__} '
                                f'{spec!r}; expected a name or a list of synonyms')
        return cls(tuple(specs))

    @classmethod
    def from_file(cls, path: Union[str, PathLike], sep: str = ', ') -> 'Vocabulary':
        """Read a name file: one class per line, synonyms separated by ``sep``.

        Lines are split on ``sep`` verbatim and only the line break is removed, as the
        reference harnesses do (SCLIP/NACLIP ``', '``; ClearCLIP ``','``, which keeps the
        leading space of later synonyms; ProxyCLIP ``'; '``). Blank lines at the end of the
        file are ignored; a blank line before the last class is an error.

        Args:
            path: the text file (UTF-8).
            sep: the synonym separator.

        Returns:
            The vocabulary, one class per non-trailing line.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'Vocabulary.from_file: name file {str(path)!r} does not '
                                    'exist or is not a file')
        if not sep:
            raise ValueError(f'Vocabulary.from_file: {path}: empty synonym separator {sep!r}')
        # read_text translates '\r\n' and '\r' to '\n', as the references' open() does
        lines = path.read_text(encoding='utf-8').split('\n')
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            raise ValueError(f'Vocabulary.from_file: {path} has no class names')
        classes = []
        for lineno, line in enumerate(lines, start=1):
            names = tuple(line.split(sep))
            if any(not name.strip() for name in names):
                raise ValueError(f'Vocabulary.from_file: {path}:{lineno}: empty name in line '
                                 f'{line!r} (separator {sep!r})')
            classes.append(names)
        return cls(tuple(classes))

    @classmethod
    def from_string(cls, text: str) -> 'Vocabulary':
        """Parse a command-line vocabulary: ``'person;pedestrian,car'``.

        Classes are separated by ``,`` and synonyms by ``;``; surrounding spaces are stripped.
        """
        if not isinstance(text, str):
            raise TypeError(f'Vocabulary.from_string: expected a str, got '
                            f'{type(text).__name__}')
        classes = []
        for spec in text.split(','):
            names = tuple(name.strip() for name in spec.split(';'))
            if any(not name for name in names):
                raise ValueError(f'Vocabulary.from_string: empty name in class {spec!r} of '
                                 f'{text!r}; expected e.g. "person;pedestrian,car"')
            classes.append(names)
        return cls(tuple(classes))

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        """The first name of each class, length K."""
        return [names[0] for names in self.classes]

    @property
    def queries(self) -> list[str]:
        """All names flattened class by class, length Q >= K."""
        return [name for names in self.classes for name in names]

    @property
    def query_to_class(self) -> Tensor:
        """``(Q,)`` int64: the class index of each query."""
        return torch.tensor([k for k, names in enumerate(self.classes) for _ in names],
                            dtype=torch.long)

    def require_distinct_names(self) -> 'Vocabulary':
        """Raise if a name belongs to two classes, else return the vocabulary.

        The rule for vocabularies a user types (the Python API's ``classes``, the demos'
        ``--classes``): a shared name scores both classes alike, so the first always wins it.
        Released benchmark name files keep their duplicates (CAT-Seg's ADE-847 lists).
        """
        seen: dict[str, int] = {}
        for k, names in enumerate(self.classes):
            for name in names:
                if seen.setdefault(name, k) != k:
                    raise ValueError(f'duplicate class name {name!r} (classes {seen[name] + 1} '
                                     f'and {k + 1}); name each class once, its synonyms in the '
                                     'same class')
        return self
