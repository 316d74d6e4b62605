"""`anyres-curate status`: how far a run got, in a folder or at a URL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from shards import DatasetError
from shards.format.manifest import MANIFEST_NAME

from .pipeline import TOOL
from .publish import SAVED, RemoteOut
from .remote import is_remote
from .workdir import WorkDir, read_json


def status(dataset: str | Path, scratch: str | Path | None = None) -> dict[str, Any]:
    """The report of the run into `dataset` (`scratch`: a URL run's, as it was given)."""
    if is_remote(str(dataset)):
        return url_status(RemoteOut.parse(str(dataset), scratch))
    return folder_status(Path(dataset).absolute(), WorkDir.of(Path(dataset).absolute()))


def folder_status(out: Path, work: WorkDir) -> dict[str, Any]:
    """How far the run in `out` got, from its work folder `work`."""
    manifest = read_json(out / MANIFEST_NAME)
    if work.saved() is None and manifest is None:
        raise DatasetError(f"no {TOOL} run in {out}")
    plan = work.plan()
    totals: Counter = Counter()
    reasons: Counter = Counter()
    done_slices = 0
    for done in work.finished():
        done_slices += 1
        totals.update({k: done[k] for k in ("items", "kept", "rejected")})
        reasons.update(done["rejects"])
    state = "complete" if manifest is not None else "fetching" if plan is None or done_slices < plan["slices"] else "packing"
    report = {"dataset": str(out), "state": state, "slices_done": done_slices,
              "slices_total": plan["slices"] if plan else None, "items_total": plan["items"] if plan else None,
              "items_done": totals["items"], "kept_staged": totals["kept"], "rejected_staged": totals["rejected"],
              "rejects": dict(reasons.most_common())}
    if manifest is not None:
        curation = manifest.get("curation") or {}
        report.update(num_samples=manifest["num_samples"], num_shards=manifest["num_shards"],
                      total_bytes=manifest["total_bytes"], counts=curation.get("counts"),
                      rejects=curation.get("rejects", {}))
    return report


def url_status(remote: RemoteOut) -> dict[str, Any]:
    """The mirror's while the run goes on here, else what was published."""
    if (remote.mirror / SAVED).exists():
        report = {**folder_status(remote.mirror, remote.work()), "dataset": remote.target.url}
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
