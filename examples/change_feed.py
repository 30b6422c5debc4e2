#!/usr/bin/env python3
"""A downstream consumer of ingest's change feed: the log shipped into Bronze.

Each run reads, with DuckDB, the segments each ingester's manifest lists
(`BRONZE/_ingest/log/<ingester>/manifest.json`), keeps the events after its checkpoint, and
"processes" every file copied or adopted since: here it appends one JSON line per file to
`--out` (put your own work in `process`). The checkpoint (the last `seq` done, per ingester)
is written after the files are processed, so a consumer killed midway processes the last few
again rather than skip them: make `process` idempotent.

    python3 examples/change_feed.py --bronze /data/bronze --checkpoint feed.json --out new.jsonl

Needs `pip install duckdb`. The line schema is in README, "The shipped log".
"""
import argparse
import json
import os
import sys

import duckdb

# Only the keys this consumer uses; every line has every key of the schema (README).
COLUMNS = {"v": "UINTEGER", "seq": "UBIGINT", "kind": "VARCHAR", "bronze": "VARCHAR",
           "blake3": "VARCHAR", "size": "UBIGINT", "stream": "VARCHAR"}
SCHEMA = 2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bronze", required=True, help="the Bronze folder ingest writes")
    p.add_argument("--checkpoint", required=True, help="JSON file: last seq done, per ingester")
    p.add_argument("--out", required=True, help="JSON lines of processed files, appended")
    a = p.parse_args()
    done = read_checkpoint(a.checkpoint)
    total = 0
    for ingester, segments in manifests(a.bronze):
        after = done.get(ingester, -1)
        rows = new_events(segments, after)
        for seq, kind, bronze, blake3, size, stream in rows:
            if kind in ("copied", "adopted"):
                process(a.out, ingester, seq, bronze, blake3, size, stream)
                total += 1
            after = seq
        done[ingester] = after
        write_checkpoint(a.checkpoint, done)
    print(json.dumps({"processed": total, "checkpoint": done}))


def manifests(bronze):
    """(ingester, [segment paths in order]) for each ingester that shipped a log."""
    root = os.path.join(bronze, "_ingest", "log")
    if not os.path.isdir(root):
        return
    for ingester in sorted(os.listdir(root)):
        path = os.path.join(root, ingester, "manifest.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        folder = os.path.dirname(path)
        yield ingester, [os.path.join(folder, s["name"]) for s in manifest["segments"]]


def new_events(segments, after):
    """The events after `after`, in order, read by DuckDB from the gzipped JSON lines."""
    if not segments:
        return []
    # Table function arguments must be constants: written as SQL literals, quotes doubled.
    paths = "[" + ", ".join(literal(s) for s in segments) + "]"
    columns = "{" + ", ".join(f"{literal(k)}: {literal(t)}" for k, t in COLUMNS.items()) + "}"
    rows = duckdb.sql(
        f"SELECT v, seq, kind, bronze, blake3, size, stream FROM read_json({paths}, "
        f"format = 'newline_delimited', compression = 'gzip', columns = {columns}) "
        f"WHERE seq > {int(after)} ORDER BY seq"
    ).fetchall()
    newer = [r for r in rows if r[0] > SCHEMA]
    if newer:
        sys.exit(f"line schema {newer[0][0]} is newer than this consumer's ({SCHEMA})")
    return [r[1:] for r in rows]


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def process(out, ingester, seq, bronze, blake3, size, stream):
    """The consumer's own work for one new file; here, one line in `out`."""
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps({"ingester": ingester, "seq": seq, "bronze": bronze,
                            "blake3": blake3, "size": size, "stream": stream}) + "\n")


def read_checkpoint(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def write_checkpoint(path, done):
    """Replaced whole (temp file, then rename): a crash leaves the old or the new one."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(done, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
