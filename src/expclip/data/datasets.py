"""Item lists: what a dataset is to the rest of the package (a root, relative item paths, labels, classes).

Readers turn a folder on disk into an :class:`ItemList`. Labels are indices into ``classes``, which are canonical
class names (``labels.CLASS_ORDER`` order) or, for user data, any words.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..hashes import ContentHashes
from ..labels import CLASS_ORDER, canonical_label, order_classes
from .images import IMAGE_EXTENSIONS
from .safe import DatasetError, safe_join, walk_files

log = logging.getLogger(__name__)


@dataclass
class ItemList:
    """A dataset as the store sees it.

    ``items``: dicts with "path" (relative to ``root``, POSIX), "label" (int index into ``classes`` or None) and
    what the reader needs: "box" [x, y, w, h] (crop to a face box), "num_frames" (a list file's frame count)...
    ``decoder``: for items that are not files under ``root`` (FER2013's pixels in a CSV), a picklable
    ``decoder(root, item) -> PIL.Image`` with a ``fingerprint()`` of its content.
    """

    name: str
    root: Path
    items: list[dict]
    classes: list[str] = field(default_factory=list)
    kind: str = "image"  # "image" or "video"
    # reader notes (fold, split, dropped counts...); "annotations": the file the items were read from (named in
    # errors), "allow_outside": whether item paths may leave ``root``
    info: dict = field(default_factory=dict)
    decoder: object | None = None

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> list[int | None]:
        return [it.get("label") for it in self.items]

    def validate(self, allow_outside: bool | None = None, check_files: bool = True) -> "ItemList":
        """Refuse, before any heavy work, what would fail or mislead a run; readers call it on what they return.

        Errors: no items, an item without a path or listed twice, a label outside ``classes``, a path that leaves
        ``root`` (unless ``allow_outside``, default ``info["allow_outside"]``) and, with ``check_files``, a dataset
        none of whose files exist (a wrong root). Some missing files are only a warning: they become failures.
        Items read by a ``decoder`` (not files) are checked as paths only.
        """
        where = self.info.get("annotations") or str(self.root)
        check_files = check_files and self.decoder is None
        if not self.items:
            raise DatasetError(f"{where}: the dataset {self.name!r} is empty (no items)")
        allow = bool(self.info.get("allow_outside", False)) if allow_outside is None else allow_outside
        seen: dict[str, int] = {}
        for i, it in enumerate(self.items):
            path, label = it.get("path"), it.get("label")
            if not isinstance(path, str) or not path:
                raise DatasetError(f"{where}: item {i} has no path")
            if path in seen:
                raise DatasetError(f"{where}: {path!r} is listed twice (items {seen[path]} and {i}); remove one")
            seen[path] = i
            if label is not None and (type(label) is not int or not 0 <= label < len(self.classes)):
                raise DatasetError(f"{where}: {path!r} has label {label!r}, outside the {len(self.classes)} classes "
                                   f"{self.classes} (indices 0..{len(self.classes) - 1})")
            safe_join(self.root, path, allow, source=where, resolve=check_files)
        if check_files:
            missing = [it["path"] for it in self.items if not _exists(self.root / it["path"])]
            if len(missing) == len(self.items):
                listed = f"{where}: " if "annotations" in self.info else ""
                raise DatasetError(f"{listed}none of the {len(missing)} items of {self.name!r} exist under {self.root} "
                                   f"(first: {missing[0]}); is the dataset root right?")
            if missing:
                log.warning("%s: %d of %d items are missing on disk (first: %s); they will be recorded as failures",
                            self.name, len(missing), len(self.items), missing[0])
        return self

    def fingerprint(self) -> dict:
        """Identity of the data for store keys: name, count and a hash of paths, labels and file contents.

        Contents are hashed (sha256 of each file, of each file of a frame folder), so that an image replaced by
        another of the same size is other data; the hashes are cached by path, size and times
        (:class:`~expclip.hashes.ContentHashes`), so that a rerun reads no unchanged file. The absolute root is
        left out so that a moved dataset keeps its features.
        """
        h = hashlib.sha256()
        with ContentHashes() as hashes:
            hashes.preload(self.root)
            for it in self.items:
                content = hashes.content(self.root / it["path"])
                extra = [it[k] for k in ("num_frames", "box", "row") if k in it]
                h.update(json.dumps([it["path"], it.get("label"), content, it.get("frames"), *extra],
                                    sort_keys=True).encode("utf-8", "surrogateescape"))
        if self.decoder is not None and hasattr(self.decoder, "fingerprint"):
            h.update(str(self.decoder.fingerprint()).encode())
        return {"name": self.name, "n": len(self.items), "kind": self.kind, "classes": self.classes,
                "sha256": h.hexdigest()[:20]}


def _exists(path: Path) -> bool:
    """``path.exists()``, False also for a name the OS refuses (too long...): that item becomes a failure."""
    try:
        return path.exists()
    except OSError:
        return False


def list_images(root: Path) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, hidden files skipped; an unreadable folder is an error)."""
    return walk_files(root, IMAGE_EXTENSIONS)


# Folder names that say which split a folder is, not what data it holds: a folder so named is named by its parent.
SPLIT_NAMES = ("train", "training", "test", "testing", "val", "valid", "validation", "eval", "dev")


GENERIC_NAMES = ("data", "dataset", "datasets", "images", "imgs", "faces")


def folder_name(root: str | Path) -> str:
    """How a folder of images is named in tables and store keys: its own name, or, when its own is a split name,
    the first of its parents that is not a split or a generic folder name (``my-faces/test`` is "my-faces" and
    ``expclip-demo/data/test`` "expclip-demo", not "test")."""
    path = Path(os.path.abspath(root))
    if path.name.lower() not in SPLIT_NAMES:
        return path.name
    for parent in list(path.parents)[:3]:
        if parent.name and parent.name.lower() not in SPLIT_NAMES + GENERIC_NAMES:
            return parent.name
    return path.name


def unlabelled_images(root: str | Path, name: str | None = None, allow_outside: bool = False) -> ItemList:
    """Every image under ``root``, labels ignored (the training pool: CAER-S train, or any folder).

    ``allow_outside``: accept symbolic links to files outside ``root`` (refused by default).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    files = list_images(root)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    items = [{"path": p.relative_to(root).as_posix(), "label": None} for p in files]
    return ItemList(name or folder_name(root), root, items, info={"allow_outside": allow_outside}).validate()


def image_folder(root: str | Path, name: str | None = None, classes: list[str] | None = None,
                 allow_outside: bool = False) -> ItemList:
    """A labelled folder: one subfolder per class, named by any synonym ("happy", "Happiness", "3_joy"...).

    Classes come out in the canonical order (so 7 basic-expression folders give the reference's 7-class order).
    ``classes`` fixes the class list instead (e.g. all 8 of AffectNet-8 when a folder is missing).
    ``allow_outside``: accept symbolic links to files outside ``root`` (refused by default).

    Raises:
        DatasetError: a subfolder name that is not an expression word, two folders for one class, no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    try:
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"{root}: cannot read this folder ({e.strerror or e})") from None
    if not subdirs:
        raise DatasetError(f"{root} has no class subfolders; expected e.g. {root}/happy/*.jpg, {root}/sad/*.jpg")
    mapping: dict[str, Path] = {}
    unknown = []
    for d in subdirs:
        c = canonical_label(d.name)
        if c is None:
            unknown.append(d.name)
        elif c in mapping:
            raise DatasetError(f"{root}: folders {mapping[c].name!r} and {d.name!r} both mean {c!r}")
        else:
            mapping[c] = d
    if unknown:
        raise DatasetError(
            f"{root}: subfolder(s) {unknown} are not expression names; rename them to one of "
            f"{list(CLASS_ORDER)} (synonyms like 'happy', 'angry' work)"
        )
    if classes is None:
        classes = order_classes(list(mapping))
    else:
        extra = sorted(set(mapping) - set(classes))
        if extra:
            raise DatasetError(f"{root}: folders for {extra} are outside the requested classes {classes}")
    items = []
    for label, c in enumerate(classes):
        if c not in mapping:
            log.warning("%s: no folder for class %r", root, c)
            continue
        for p in list_images(mapping[c]):
            items.append({"path": p.relative_to(root).as_posix(), "label": label})
    if not items:
        raise DatasetError(f"no images under the class folders of {root}")
    return ItemList(name or folder_name(root), root, items, list(classes),
                    info={"allow_outside": allow_outside}).validate()
