"""The one way into a curation run, for the library, `anyres-curate` and an object-store
`--out` alike: check `--out`, then fetch, deduplicate and pack what is left.

A local `--out` is checked and run in place (`pipeline`, or `incremental` for `--add`). A URL
`--out` goes through the same checks against what is at the URL, then runs in a local mirror
whose slices commit at the URL (`publish.RemoteOut`), and is published. Either way a rerun
resumes, other settings are refused, and `restart` starts over.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from shards import DatasetError
from shards.format.manifest import MANIFEST_NAME

from .engine import Engine
from .incremental import prepare_add, run_add
from .pipeline import CurateConfig, Events, check_out, identity, made_by_curate, prepare, run
from .publish import RemoteOut, publish
from .remote import is_remote
from .sources import Source


def start(source: Source, out: str | Path, config: CurateConfig, engine: Engine, restart: bool = False,
          events: Events | None = None, add: bool = False, scratch: str | Path | None = None) -> dict[str, Any]:
    """The finished dataset's manifest. `engine` runs only where slices remain (an
    `engine.LazyEngine` then starts no cluster for a finished run or a refused `--out`);
    `scratch` holds a URL's mirror."""
    events = events or Events()
    if is_remote(str(out)):
        if add:
            raise DatasetError("--add needs a local --out: curate the addition into a local copy, "
                               "or curate the whole input again to a new URL")
        return start_at_url(source, RemoteOut.parse(str(out), scratch), config, engine, restart, events)
    out = Path(out).absolute()
    ready, go = (prepare_add, run_add) if add else (prepare, run)
    work = ready(out, source, config, restart)
    if work is None:
        return json.loads((out / MANIFEST_NAME).read_bytes())
    return go(source, out, work, config, engine, events)


def curate(source: Source, out: str | Path, config: CurateConfig, engine: Engine,
           restart: bool = False, events: Events | None = None) -> dict[str, Any]:
    return start(source, out, config, engine, restart, events)


def add(source: Source, out: str | Path, config: CurateConfig, engine: Engine,
        restart: bool = False, events: Events | None = None) -> dict[str, Any]:
    return start(source, out, config, engine, restart, events, add=True)


def start_at_url(source: Source, remote: RemoteOut, config: CurateConfig, engine: Engine, restart: bool,
                 events: Events) -> dict[str, Any]:
    """Run (or resume, or finish uploading) the curation into `remote`; its manifest."""
    # the mirror's folder is a digest: the name comes from the URL
    config = dataclasses.replace(config, name=config.name or remote.target.url.rsplit("/", 1)[-1] or None)
    if restart:
        if remote.saved() is not None or made_by_curate(remote.manifest()):
            remote.discard()
        shutil.rmtree(remote.mirror, ignore_errors=True)
    manifest = remote.manifest()
    check_out(remote.target.url, identity(source, config), manifest, remote.saved(), remote.target.is_empty)
    if manifest is not None and not remote.mirror.exists():  # published: nothing left to do
        return manifest
    remote.adopt_config()
    if prepare(remote.mirror, source, config, restart=False) is not None:
        remote.upload_config()
        run(source, remote.mirror, remote.work(), config, engine, events)
    return publish(remote)


def local_root(out: str | Path, scratch: str | Path | None = None) -> Path:
    """Where a run into `out` keeps its files on this machine: the dataset's folder, or the
    mirror of a dataset at a URL."""
    return RemoteOut.parse(str(out), scratch).mirror if is_remote(str(out)) else Path(out).absolute()
