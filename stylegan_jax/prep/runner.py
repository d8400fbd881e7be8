"""The resumable preparation loop shared by the prepare_* tools.

Each input item (a post, a photo, a file) is processed into zero or more examples. Resuming rests
on two records in the output folder:
- PreparedWriter's complete shards: their keys are `done_keys`; the unfinished shard is redone;
- preparation_log.jsonl: one line per processed item (its keys, drop reason and counters), appended
  after the item's examples went to the writer.
On resume an item is skipped only if it is in the log and all its keys are in complete shards, and
its logged counters are reused; any other item is processed again and only its not-yet-done
examples are added. Items come in the same deterministic order, so the shards end byte-identical
to an uninterrupted run, and so does the report. The log also records the settings: resuming with
different ones is refused (the shards would mix two preparations).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Callable, Iterable

from tqdm import tqdm

from stylegan_jax.atomic import write_text_atomically
from stylegan_jax.prep.images import MissingImage, UnreadableImage
from stylegan_jax.prep.tags import group_counts

LOG_FILE = "preparation_log.jsonl"
# A drop reason (or filter) that takes more than this fraction of the items gets a warning.
DOMINANT_FRACTION = 0.9
# Likely causes, by drop reason, for the warnings.
LIKELY_CAUSES = {
    "no_face_detected": "the detector found no face: is it the one for these images (--detector=animeface for "
                        "drawn anime art, opencv for photos)? Are the images portraits at all? (--crop=centre "
                        "keeps whole images)",
    "no_usable_face": "faces were found but rejected (see face_rejected): too small for --min_face_size, no room "
                      "below the face for the target shape, or under --min_confidence / --check_crops",
    "image_missing": "the images are not where the metadata says: check --images and --layout (the 512px subset "
                     "stores every image as <id>.jpg and holds only its SFW posts)",
    "unreadable_image": "the files are corrupt, truncated or of a format Pillow cannot read",
    "too_small": "the images are smaller than --min_size",
    "not_in_a_class_folder": "with --labels_from_subfolders the images must lie in class sub-folders",
}


@dataclasses.dataclass
class Outcome:
    """What one input item gave: examples (key, uint8 image [H, W, 3], label vector or None), or
    the reason it gave none; counters (name -> int) add up into the report."""
    examples: list = dataclasses.field(default_factory=list)
    dropped: str | None = None
    counts: dict = dataclasses.field(default_factory=dict)


def _read_log(path: str, settings: dict) -> dict:
    """item id -> log entry; a torn or malformed line (a killed run) is ignored."""
    entries, logged_settings = {}, None
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            for line in file:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "settings" in entry:
                    logged_settings = entry["settings"]
                elif "item" in entry:
                    entries[entry["item"]] = entry
    canonical = json.loads(json.dumps(settings))
    if logged_settings is not None and logged_settings != canonical:
        changed = sorted(k for k in set(canonical) | set(logged_settings)
                         if canonical.get(k) != logged_settings.get(k))
        raise ValueError(f"{os.path.dirname(path)} was prepared with other settings ({', '.join(changed)} differ): "
                         "use a new --out folder or the original settings")
    return entries


def _rewrite_log(path: str, settings: dict, entries: dict) -> None:
    """Rewrites the log atomically without torn lines, so appends start on a fresh line."""
    lines = [json.dumps({"settings": settings})] + [json.dumps(e) for e in entries.values()]
    write_text_atomically(path, "".join(line + "\n" for line in lines))


def run_preparation(items: Iterable[tuple[str, object]], process: Callable[[object], Outcome], writer, *,
                    settings: dict, total: int | None = None, desc: str = "preparing") -> dict:
    """Processes (item id, payload) pairs in order into writer; returns the run's summary.

    process(payload) -> Outcome. UnreadableImage raised by it drops the item ("image_missing" or
    "unreadable_image"); any other exception stops the run, which a rerun resumes.
    Summary: {"items", "kept_examples", "dropped": {reason: items}, "counts": {name: total}}.
    """
    log_path = os.path.join(writer.out_dir, LOG_FILE)
    logged = _read_log(log_path, settings)
    _rewrite_log(log_path, settings, logged)
    summary = {"items": 0, "kept_examples": 0, "dropped": {}, "counts": {}}
    with open(log_path, "a", encoding="utf-8") as log, tqdm(items, total=total, desc=desc, unit="img") as bar:
        for item_id, payload in bar:
            item_id = str(item_id)
            entry = logged.get(item_id)
            if entry is None or not all(key in writer.done_keys for key in entry["keys"]):
                entry = _process_one(item_id, payload, process, writer)
                log.write(json.dumps(entry) + "\n")
                log.flush()
            summary["items"] += 1
            summary["kept_examples"] += len(entry["keys"])
            if entry["dropped"]:
                summary["dropped"][entry["dropped"]] = summary["dropped"].get(entry["dropped"], 0) + 1
            for name, count in entry["counts"].items():
                summary["counts"][name] = summary["counts"].get(name, 0) + count
            bar.set_postfix(kept=summary["kept_examples"], refresh=False)
    summary["dropped"] = dict(sorted(summary["dropped"].items()))
    summary["counts"] = dict(sorted(summary["counts"].items()))
    return summary


def _process_one(item_id, payload, process, writer) -> dict:
    try:
        outcome = process(payload)
    except MissingImage:
        outcome = Outcome(dropped="image_missing")
    except UnreadableImage:
        outcome = Outcome(dropped="unreadable_image")
    for key, image, label in outcome.examples:
        if key not in writer.done_keys:
            writer.add(key, image, label)
    return {"item": item_id, "keys": [key for key, _, _ in outcome.examples], "dropped": outcome.dropped,
            "counts": outcome.counts}


def warnings_for(summary: dict) -> list[str]:
    """Warnings for a run that keeps nothing, or where one drop reason takes more than
    DOMINANT_FRACTION of the items, each naming the likely cause."""
    items, warnings = summary["items"], []
    if items == 0:
        return ["no input to prepare: the folder has no images, or the filters removed every post"]
    if summary["kept_examples"] == 0:
        warnings.append(f"kept nothing of {items} items")
    for reason, count in summary["dropped"].items():
        if count > DOMINANT_FRACTION * items or (summary["kept_examples"] == 0 and count == items):
            cause = LIKELY_CAUSES.get(reason, "see the report's counts")
            warnings.append(f"{count} of {items} items ({count / items:.0%}) dropped as {reason}: {cause}")
    return warnings


def finish(writer, summary: dict, *, tool: str, settings: dict, warnings: tuple = (), **sections) -> dict:
    """Builds the final report, closes the writer (the report goes into dataset.json), prints it.

    Report: tool, settings, the caller's sections (e.g. metadata filter counts) in order, then
    items, kept_examples, kept_fraction (the fraction of items that gave an example), dropped per
    reason, the grouped counters (face_rejected, tag, label) and warnings (the caller's, then
    warnings_for's), which are also printed on stderr as "warning: ..." lines."""
    items_kept = summary["items"] - sum(summary["dropped"].values())
    warnings = list(warnings) + warnings_for(summary)
    report = {"tool": tool, "settings": settings, **sections,
              "items": summary["items"], "kept_examples": summary["kept_examples"],
              "kept_fraction": round(items_kept / summary["items"], 4) if summary["items"] else 0.0,
              "dropped": summary["dropped"], **group_counts(summary["counts"]), "warnings": warnings}
    info = writer.close(report)
    print(json.dumps(report, indent=1))
    print(f"wrote {info['num_examples']} examples in {len(info['shards'])} shards to {writer.out_dir}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return report
