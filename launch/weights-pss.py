#!/usr/bin/env python3
"""Samples, once a second until STOPFILE exists, how much of the node-shared base-weights mapping (the cached
`<hash>.f32` file) the knowtune ranks whose command line contains MARKER hold: the sum over ranks of the mapping's
PSS (resident once per node means about the file's size) and each rank's private part of it. Writes the largest
values seen to OUTPUT as JSON. Usage: weights-pss.py MARKER STOPFILE OUTPUT"""
import json, os, sys, time

marker, stop_file, output = sys.argv[1:4]


def ranks():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            words = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if words and words[0].endswith(b"/knowtune") and marker.encode() in b" ".join(words):
            yield int(pid)


def mapping_kib(pid):
    """(pss, private) in KiB of the .f32 mappings of pid."""
    pss = private = 0
    inside = False
    try:
        for line in open(f"/proc/{pid}/smaps"):
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping header
                inside = fields[-1].endswith(".f32")
            elif inside and fields[0] == "Pss:":
                pss += int(fields[1])
            elif inside and fields[0] in ("Private_Clean:", "Private_Dirty:"):
                private += int(fields[1])
    except OSError:
        pass
    return pss, private


best = {"ranks": 0, "weights_pss_sum_mib": 0.0, "weights_private_mib_per_rank": [], "weights_file_mib": None}
while not os.path.exists(stop_file):
    samples = [mapping_kib(pid) for pid in sorted(ranks())]
    total = sum(p for p, _ in samples) / 1024
    if total > best["weights_pss_sum_mib"]:
        best.update(ranks=len(samples), weights_pss_sum_mib=round(total, 1),
                    weights_private_mib_per_rank=[round(v / 1024, 1) for _, v in samples])
    time.sleep(1)
cache = os.environ.get("KNOWTUNE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "knowtune")
files = [os.path.join(cache, "weights", f) for f in os.listdir(os.path.join(cache, "weights")) if f.endswith(".f32")]
if files:
    best["weights_file_mib"] = round(max(os.path.getsize(f) for f in files) / 2**20, 1)
json.dump(best, open(output, "w"), indent=2)
