#!/usr/bin/env python3
"""austen_chapters.py R_DATA_DIR DEST — writes Jane Austen's six novels, one UTF-8 file per chapter, from the
R data of Debian's r-cran-janeaustenr (the package's data/Rdata.rdx + Rdata.rdb: R's lazy-load database,
one zlib-compressed serialized character vector per novel, a line per element).

DEST/<novel>/chapter_NNN.txt, numbered in reading order (Emma's volumes restart their chapter numbers; the
files do not). A chapter runs from its heading line ("CHAPTER XII", "Chapter 3") to the next heading; the
title page before the first heading opens chapter_001. Lines are joined with "\\n", and every file ends with
one. Needs the rdata package (scripts/setup/requirements.lock).
"""
import gzip
import os
import re
import struct
import sys
import zlib

import rdata

HEADING = re.compile(r"^\s*(CHAPTER|Chapter)\s+[IVXLC0-9]+\b")


def read_rdb(data_dir):
    """{name: list of lines} from R's lazy-load database (index: gzip'd serialization; objects: a 4-byte
    big-endian length, then zlib)."""
    index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(open(f"{data_dir}/Rdata.rdx", "rb").read())))
    blob = open(f"{data_dir}/Rdata.rdb", "rb").read()
    novels = {}
    for name, (offset, length) in index["variables"].items():
        chunk = blob[int(offset):int(offset) + int(length)]
        raw = zlib.decompress(chunk[4:])
        if len(raw) != struct.unpack(">I", chunk[:4])[0]:
            sys.exit(f"austen_chapters: {name}: length mismatch in Rdata.rdb")
        novels[str(name)] = [str(s) for s in rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))]
    return novels


def chapters(lines):
    out = [[]]
    for line in lines:
        if HEADING.match(line) and any(HEADING.match(l) for l in out[-1]):
            out.append([])
        out[-1].append(line)
    return out


def main():
    data_dir, dest = sys.argv[1], sys.argv[2]
    for name, lines in sorted(read_rdb(data_dir).items()):
        os.makedirs(f"{dest}/{name}", exist_ok=True)
        for i, chapter in enumerate(chapters(lines), start=1):
            with open(f"{dest}/{name}/chapter_{i:03d}.txt", "w", encoding="utf-8", newline="\n") as f:
                f.write("\n".join(chapter).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
