"""The commands of the guides in docs/, and the small workspace they run in.

Every fenced ```bash block of docs/*.md (README.md and BENCHMARKS.md excepted) is split into
commands: a line ending in `\\` continues on the next, blank and comment-only lines are
skipped. A trailing `# needs: WHAT` marks a command that needs what a test machine lacks
(`flickr` credentials, a `gpu`, a `cluster`, the `network`); `# exit: N` is the exit code the
command must end with (default 0). Every ```python block is run whole, as a script.

The workspace holds what the guides name: `photos/` (a few small JPEGs, one in a subfolder)
with `credits.csv`, `more/` (new photos, and a larger copy of one already in `photos/`),
`test-photos/` (a smaller copy of a photo of `photos/`, for --exclude), `panoramas/` (6:1
images, one turn each), URL lists `urls.txt` and `urls.csv` of the same photos served over
HTTP on 127.0.0.1 (one of them missing, a 404), and `flickr.env`, a credentials file of the
documented shape with fake values.
"""

from __future__ import annotations

import csv
import functools
import http.server
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .factories import blotches, encode

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NOT_GUIDES = {"BENCHMARKS.md"}
# The guides in reading order: a later guide uses what an earlier one made (the dataset `ds`,
# the runs under runs/), as a reader following them would.
ORDER = ("curation.md", "format.md", "training.md", "generation.md")

NEEDS = re.compile(r"#\s*needs:\s*([\w-]+)")
EXIT = re.compile(r"#\s*exit:\s*(\d+)")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int  # first line of the command in its file, 1-based
    text: str  # continuation lines joined; a python block is the whole script
    lang: str  # "bash" or "python"
    needs: str | None = None
    exit: int = 0

    @property
    def id(self) -> str:
        short = re.sub(r"\s+", " ", self.text.split("\n", 1)[0])[:60]
        return f"{self.doc}:{self.line}: {short}"


def guides() -> list[Path]:
    found = {p.name: p for p in DOCS.glob("*.md") if p.name not in NOT_GUIDES}
    return [found[name] for name in ORDER if name in found] + sorted(
        p for name, p in found.items() if name not in ORDER)


def blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line number of its first line, lines) of every fenced block."""
    out, current = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line.strip())
        if current is None:
            if fence:
                current = (fence.group(1), number + 1, [])
        elif line.strip() == "```":
            out.append(current)
            current = None
        else:
            current[2].append(line)
    if current is not None:
        raise ValueError(f"{path.name}: a fenced block opened at line {current[1] - 1} is never closed")
    return out


def commands(path: Path) -> list[Command]:
    found = []
    for lang, first, lines in blocks(path):
        if lang == "python":
            found.append(Command(path.name, first, "\n".join(lines), "python"))
            continue
        if lang not in ("bash", "sh", "shell", "console"):
            continue
        pending: list[str] = []
        start = first
        for number, line in enumerate(lines, first):
            if not pending:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                start = number
            if line.rstrip().endswith("\\"):
                pending.append(line.rstrip()[:-1].rstrip())
                continue
            pending.append(line.strip() if pending else line.rstrip())
            text = " ".join(p.strip() for p in pending)
            pending = []
            needs, code = NEEDS.search(text), EXIT.search(text)
            found.append(Command(path.name, start, text, "bash", needs.group(1) if needs else None,
                                 int(code.group(1)) if code else 0))
        if pending:
            raise ValueError(f"{path.name}:{start}: a command ends with '\\' and nothing after it")
    return found


def all_commands() -> list[Command]:
    return [c for path in guides() for c in commands(path)]


# The workspace ---------------------------------------------------------------------------------

PHOTOS = {  # name: (width, height, seed); sizes as a photo folder has them, small enough to be quick
    "lake.jpg": (640, 480, 1),
    "forest.jpg": (768, 512, 2),
    "harbour.jpg": (600, 600, 3),
    "dunes.jpg": (512, 384, 4),
    "street.jpg": (384, 512, 5),  # portrait
    "2023/glacier.jpg": (704, 528, 6),
    "2023/meadow.jpg": (400, 300, 7),
}
CREDITS = [  # path, license, license_url, owner, title
    ("lake.jpg", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/", "Ana Lima", "Lake at dawn"),
    ("forest.jpg", "cc-by-sa-4.0", "https://creativecommons.org/licenses/by-sa/4.0/", "Ben Okafor", "Beech forest"),
    ("harbour.jpg", "cc0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "Chen Wei", "Harbour"),
    ("dunes.jpg", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/", "Ana Lima", "Dunes"),
    ("street.jpg", "cc-by-2.0", "https://creativecommons.org/licenses/by/2.0/", "Dara Quinn", "Old street"),
    ("2023/glacier.jpg", "cc-by-sa-4.0", "https://creativecommons.org/licenses/by-sa/4.0/", "Ben Okafor",
     "Glacier"),
    ("2023/meadow.jpg", "cc0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "Chen Wei", "Meadow"),
]
MORE = {"canyon.jpg": (720, 480, 8), "reef.jpg": (480, 480, 9)}
MORE_CREDITS = [
    ("canyon.jpg", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/", "Eli Moss", "Canyon"),
    ("reef.jpg", "cc0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "Chen Wei", "Reef"),
    ("dunes-large.jpg", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/", "Ana Lima", "Dunes"),
]


def _jpeg(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(image, "JPEG"))


def _credits(path: Path, rows: list[tuple[str, ...]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "license", "license_url", "owner", "title"])
        writer.writerows(rows)


def make_inputs(root: Path) -> None:
    """Everything but the URL lists, which need the server's address."""
    images = {name: blotches(w, h, seed) for name, (w, h, seed) in PHOTOS.items()}
    for name, image in images.items():
        _jpeg(root / "photos" / name, image)
    _credits(root / "credits.csv", CREDITS)
    for name, (w, h, seed) in MORE.items():
        _jpeg(root / "more" / name, blotches(w, h, seed))
    _credits(root / "more-credits.csv", MORE_CREDITS)
    # A photo of photos/ at a larger size: --add keeps it and drops the smaller copy.
    _jpeg(root / "more" / "dunes-large.jpg", images["dunes.jpg"].resize((768, 576), Image.Resampling.LANCZOS))
    # A held-out set: a downscaled copy of one training photo, which --exclude must keep out.
    _jpeg(root / "test-photos" / "lake-small.jpg", images["lake.jpg"].resize((320, 240), Image.Resampling.LANCZOS))
    _jpeg(root / "test-photos" / "pier.jpg", blotches(480, 360, 10))
    for i in range(2):  # one turn of a cylinder each: 6 frames of 60 degrees
        _jpeg(root / "panoramas" / f"pano-{i}.jpg", blotches(1536, 256, 20 + i))
    (root / "flickr.env").write_text("FLICKR_API_KEY=0123456789abcdef\nFLICKR_API_SECRET=fedcba9876543210\n")


def write_url_lists(root: Path, base: str) -> None:
    names = ["lake.jpg", "forest.jpg", "harbour.jpg", "dunes.jpg"]
    credits = {row[0]: row for row in CREDITS}
    lines = [f"{base}/photos/{name}" for name in names] + [f"{base}/photos/missing.jpg"]
    (root / "urls.txt").write_text("# one URL a line\n" + "\n".join(lines) + "\n")
    with open(root / "urls.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["url", "license", "owner", "title"])
        for name in names:
            _, lic, _, owner, title = credits[name]
            writer.writerow([f"{base}/photos/{name}", lic, owner, title])
    with open(root / "links.tsv", "w", newline="", encoding="utf-8") as f:  # columns named otherwise
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["image_url", "licence", "author"])
        for name in names[:2]:
            writer.writerow([f"{base}/photos/{name}", credits[name][1], credits[name][3]])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
