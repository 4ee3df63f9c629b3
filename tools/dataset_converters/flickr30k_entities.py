"""Flickr30k Entities -> the ZSGNet csv layout read by ``Flickr30kEntitiesDataset``.

    python tools/dataset_converters/flickr30k_entities.py \\
        data/grounding/flickr/flickr30k_entities data/grounding/flickr30k_entities_test.csv

Reads ``<root>/<split>.txt`` (image ids), ``Sentences/<id>.txt`` (phrases marked
``[/EN#<id>/<type> words]``) and ``Annotations/<id>.xml`` (boxes per entity id), as
BryanPlummer/flickr30k_entities ``flickr30k_entities_utils.py`` parses them. One row per phrase
that has at least one box: ``img_id``, ``bbox`` (the union of the entity's boxes, ``[x1, y1,
x2, y2]``), ``query`` (a one-phrase list, as ZSGNet's ``flickr30k`` csv). Phrases of
entities without boxes (``notvisual``, scene-only) are skipped.

The ZSGNet splits (``ds_csv_ann/...``) need no conversion: ``ZSGNetDataset`` reads them as
distributed.
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

PHRASE = re.compile(r'\[/EN#(\d+)/\S+ ([^\]]+)\]')


def entity_boxes(xml_path: Path) -> dict[str, list[list[int]]]:
    """Entity id -> its boxes ``[x1, y1, x2, y2]`` from one Annotations file."""
    boxes: dict[str, list[list[int]]] = {}
    for obj in ET.parse(xml_path).getroot().iter('object'):
        box = obj.find('bndbox')
        if box is None:
            continue
        coords = [int(box.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
        for name in obj.iter('name'):
            boxes.setdefault(name.text, []).append(coords)
    return boxes


def convert(root: Path, out: Path, split: str = 'test') -> int:
    """Write the csv; returns the number of rows."""
    ids_file = root / f'{split}.txt'
    if not ids_file.is_file():
        raise FileNotFoundError(f'{ids_file} does not exist; clone '
                                'https://github.com/BryanPlummer/flickr30k_entities and unzip '
                                'its annotations.zip under ROOT')
    rows = []
    for image_id in ids_file.read_text().split():
        boxes = entity_boxes(root / 'Annotations' / f'{image_id}.xml')
        for line in (root / 'Sentences' / f'{image_id}.txt').read_text().splitlines():
            for entity, phrase in PHRASE.findall(line):
                if entity not in boxes:
                    continue
                b = boxes[entity]
                union = [min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b),
                         max(x[3] for x in b)]
                rows.append((image_id, str(union), str([phrase])))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['img_id', 'bbox', 'query'])
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', type=Path, help='the flickr30k_entities folder')
    parser.add_argument('out', type=Path, help='csv to write')
    parser.add_argument('--split', default='test', choices=['train', 'val', 'test'])
    args = parser.parse_args(argv)
    try:
        count = convert(args.root, args.out, args.split)
    except (FileNotFoundError, ET.ParseError) as err:
        print(f'flickr30k_entities.py: error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {count} phrases to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
