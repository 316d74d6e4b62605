"""A curation run whose `--out` is a URL (`remote.py` says how it is laid out): checked against
what is already there, run in the local mirror with slices committed at the URL, then
published. The same identity rules as a local run: a rerun resumes, other settings are refused,
`--restart` starts over.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from typing import Any

from plumbing.console import progress_bar
from shards import DatasetError
from shards.format.manifest import MANIFEST_NAME, WORK_DIR
from shards.intake.pack import REJECTS_NAME

from .pipeline import TOOL, CurateConfig, Events, check_same_run, identity, prepare, run, status
from .remote import RemoteOut
from .signature_files import DATASET_SIGNATURES
from .sources import Source
from .workdir import DEDUP_NAME, WorkDir

RECORDS = (REJECTS_NAME, DEDUP_NAME, DATASET_SIGNATURES, f"{WORK_DIR}/config.json", f"{WORK_DIR}/plan.json")


def ours(manifest: dict[str, Any] | None) -> bool:
    return manifest is not None and (manifest.get("curation") or {}).get("tool") == TOOL


def curate_remote(source: Source, remote: RemoteOut, config: CurateConfig, engine_factory,
                  restart: bool = False, events: Events | None = None) -> dict[str, Any]:
    """Run (or resume, or finish uploading) the curation into `remote`; its manifest.
    `engine_factory()` is called only when slices remain to fetch."""
    if restart:
        if remote.saved() is not None or ours(remote.manifest()):
            remote.discard()
        shutil.rmtree(remote.mirror, ignore_errors=True)
    wanted = identity(source, config)
    manifest = remote.manifest()
    if manifest is not None:
        if not ours(manifest):
            raise DatasetError(f"{remote.target.url} holds a dataset not made by {TOOL}; choose another --out")
        check_same_run(remote.target.url, wanted, remote.saved())
        if not remote.mirror.exists():  # published: nothing left to do
            return manifest
    saved = remote.saved()
    if saved is None and manifest is None and not remote.target.is_empty():
        raise DatasetError(f"{remote.target.url} is not empty and holds no {TOOL} run; choose a new or empty --out")
    check_same_run(remote.target.url, wanted, saved)
    remote.adopt_config()
    work = prepare(remote.mirror, source, config, restart=False)
    if work is not None:
        remote.upload_config()
        engine = engine_factory()
        try:
            run(source, remote.mirror, dataclasses.replace(work, remote=remote.staging), config, engine,
                events or Events())
        finally:
            engine.close()
    return publish(remote)


def publish(remote: RemoteOut) -> dict[str, Any]:
    """Upload the dataset packed in the mirror, the manifest last; then drop the mirror."""
    manifest = json.loads((remote.mirror / MANIFEST_NAME).read_bytes())
    files = [shard["name"] for shard in manifest["shards"]]
    files += [name for name in RECORDS if (remote.mirror / name).is_file()]
    with progress_bar("upload", len(files) + 2) as advance:
        remote.publish(files, advance)
    shutil.rmtree(remote.mirror, ignore_errors=True)
    return manifest


def remote_status(remote: RemoteOut) -> dict[str, Any]:
    """`status` of a run into a URL: the mirror's while it runs here, else what was published."""
    if (remote.mirror / WORK_DIR / "config.json").exists():
        work = dataclasses.replace(WorkDir.of(remote.mirror), remote=remote.staging)
        report = {**status(remote.mirror, work), "dataset": remote.target.url}
        if report["state"] == "complete":  # packed here, not yet all uploaded
            report["state"] = "uploading"
        return report
    manifest = remote.manifest()
    if manifest is None:
        raise DatasetError(f"no {TOOL} run in {remote.target.url}" + (
            " (begun, but not on this machine: rerun its command here to resume it)" if remote.saved() else ""))
    curation = manifest.get("curation") or {}
    counts = curation.get("counts") or {}
    return {"dataset": remote.target.url, "state": "complete", "slices_done": counts.get("slices", 0),
            "slices_total": counts.get("slices"), "items_total": counts.get("items"),
            "items_done": counts.get("items", 0), "kept_staged": None, "rejected_staged": None,
            "rejects": curation.get("rejects", {}), "num_samples": manifest.get("num_samples"),
            "num_shards": manifest.get("num_shards"), "total_bytes": manifest.get("total_bytes"),
            "counts": counts}
