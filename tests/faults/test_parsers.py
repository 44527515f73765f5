"""Fault injection, property-based: every parser of annotation files, label files, folder names and dataset paths,
fed random lines, either returns something valid or raises its documented error naming the file (and line).

To cover a new parser, add a :class:`Parser` to :data:`PARSERS`: where the random text goes (``write``), how to
parse it, which errors it may raise; a reader that returns an :class:`ItemList` is also checked to ``validate()``.
With ``valid`` (a draw of valid content and the labels PROTOCOL.md gives it, see support/format_cases.py), valid files
must parse to exactly those labels.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expclip.data.datasets import DatasetError, ItemList, image_folder
from expclip.data.formats.ferplus import read_ferplus
from expclip.data.formats.generic import read_csv_labels, read_list_file
from expclip.data.formats.static import read_affectnet, read_caers, read_rafdb
from expclip.data.formats.video_sets import read_afew, read_dfew, read_ferv39k, read_mafw
from expclip.data.safe import AnnotationError, PathEscapeError, read_csv_rows, read_lines, safe_join
from expclip.data.video import sample_frame_indices
from expclip.labels import CLASS_ORDER, SYNONYMS, LabelSpec, canonical_label, label_spec_from_obj, load_label_spec
from expclip.prompts import custom_prompts

from support import format_cases as fc

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------------ random lines
# Lines built from the pieces real annotation files are made of, plus the ways they go wrong.
TOKENS = st.sampled_from([
    "img/0001.jpg", "Image/aligned/test_0001_aligned.jpg", "clip_01", "/home/author/DFEW/clip_01", "../../etc/passwd",
    "a b.jpg", "0", "1", "7", "-1", "16", "999999999999", "1e3", "nan", "happy", "Happy", "Angry", "surprise",
    "neutral", "contempt", '"quoted,field"', "", "é", "\u202e", "\t", "#comment", "NF", "unknown", "a" * 300,
    # pieces of the benchmarks' own files, so that random lines also get past their first checks
    "test_0001.jpg", "train_00001.jpg", "1/a0.jpg", "c1", "00001", "00025.mp4", "War/Happy/0001", "anger_disgust",
    "Usage", "Image name", "PrivateTest", "fer0000001.png", "(0, 0, 48, 48)", "video_name", "label", "path",
    "subDirectory_filePath", "expression", "12.0",
])
LINE = st.lists(TOKENS, max_size=5).flatmap(
    lambda toks: st.sampled_from([" ", ",", "\t", ";"]).map(lambda sep: sep.join(toks)))
NOISE = st.text(string.printable + "é\u0000\u2028", max_size=40)
LINES = st.lists(st.one_of(LINE, LINE, NOISE), max_size=12)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def annotation_bytes(draw) -> bytes:
    """A random annotation file: lines, line ends, BOM, missing final newline, or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    end = draw(ENDINGS)
    text = end.join(draw(LINES)) + draw(st.sampled_from(["", end]))
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")


# ------------------------------------------------------------------------------------------------ the parsers
@dataclass(frozen=True)
class Parser:
    """A parser under test: ``write(root, data)`` puts the random bytes where it reads them and returns its argument;
    ``parse(arg)`` returns a result or raises one of ``errors`` (whose message must name the file ``names``).
    ``valid(draw)``: valid content and the {item path: class} it must parse to."""

    name: str
    write: Callable[[Path, bytes], Path]
    parse: Callable[[Path], Any]
    errors: tuple[type[BaseException], ...]
    names: str  # a file name the error message must contain
    valid: Callable[[Callable], tuple[bytes, dict[str, str]]] | None = None


def _file(name: str) -> Callable[[Path, bytes], Path]:
    def write(root: Path, data: bytes) -> Path:
        (root / name).write_bytes(data)
        return root / name
    return write


DATA = (DatasetError,)
PARSERS: list[Parser] = [
    Parser("label file (JSON)", _file("labels.json"), load_label_spec, (ValueError,), "labels.json"),
    Parser("label file (YAML)", _file("labels.yaml"), load_label_spec, (ValueError,), "labels.yaml"),
    Parser("annotation lines", _file("list.txt"), read_lines, DATA, "list.txt"),
    Parser("CSV rows", _file("labels.csv"), lambda p: read_csv_rows(p, ["path", "label"]), DATA, "labels.csv"),
    # issue 3's dataset readers, each on its own annotation file (or folder names) inside a minimal download
    Parser("RAF-DB label file", fc.write_rafdb, read_rafdb, DATA, "list_patition_label.txt", fc.valid_rafdb),
    Parser("AffectNet CSV", fc.write_affectnet_csv, lambda r: read_affectnet(r, 8), DATA, "validation.csv",
           fc.valid_affectnet_csv),
    Parser("AffectNet npy", fc.write_affectnet_npy, lambda r: read_affectnet(r, 8), DATA, "annotations",
           fc.valid_affectnet_npy),
    Parser("FERPlus vote CSV", fc.write_ferplus_votes, read_ferplus, DATA, "fer2013new.csv", fc.valid_ferplus_votes),
    Parser("FERPlus pixels CSV", fc.write_ferplus_pixels, read_ferplus, DATA, "fer2013.csv"),
    Parser("FERPlus label.csv", fc.write_ferplus_png, read_ferplus, DATA, "label.csv", fc.valid_ferplus_png),
    Parser("CAER-S folders", fc.write_caers, read_caers, DATA, "train", fc.valid_folders(fc.CAERS_FOLDERS, "0001.png")),
    Parser("DFEW split CSV", fc.write_dfew, lambda r: read_dfew(r, 1), DATA, "set_1.csv", fc.valid_dfew),
    Parser("FERV39k setup file", fc.write_ferv39k, read_ferv39k, DATA, "test_All.csv", fc.valid_ferv39k),
    Parser("MAFW split file", fc.write_mafw, lambda r: read_mafw(r, 1), DATA, "test.txt", fc.valid_mafw),
    Parser("AFEW folders", fc.write_afew, read_afew, DATA, "Val_AFEW",
           fc.valid_folders(fc.AFEW_FOLDERS, "000000001")),
    Parser("generic CSV", fc.write_csv_labels, read_csv_labels, DATA, "labels.csv", fc.valid_csv_labels),
    Parser("list file", fc.write_list, lambda r: read_list_file(r / "clips", r / "list.txt"), DATA, "list.txt",
           fc.valid_list),
]


def _check_result(result: Any, root: Path) -> None:
    if isinstance(result, ItemList):
        result.validate(check_files=False)
    if isinstance(result, LabelSpec):
        assert result.labels and len(set(result.labels)) == len(result.labels) and all(s.strip() for s in result.labels)
        prompts = custom_prompts(result.labels, result.templates, result.descriptions)
        assert len(prompts) == len(result.labels) and all(prompts)


def _valid_or_named_error(parser: Parser, root: Path, data: bytes) -> None:
    arg = parser.write(root, data)
    try:
        result = parser.parse(arg)
    except parser.errors as e:
        assert parser.names in str(e), f"{parser.name}: the error does not name the file: {e}"
        if isinstance(e, AnnotationError) and e.line is not None and e.path.endswith(parser.names):
            assert 1 <= e.line <= data.count(b"\n") + data.count(b"\r") + 1, e
        return
    _check_result(result, root)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.name)
@FAST
@given(data=annotation_bytes())
def test_every_parser_returns_valid_data_or_its_documented_error(parser, data, tmp_path_factory):
    _valid_or_named_error(parser, tmp_path_factory.mktemp("p"), data)


@pytest.mark.parametrize("parser", [p for p in PARSERS if p.valid], ids=lambda p: p.name)
@FAST
@given(data=st.data())
def test_a_valid_file_with_random_lines_mixed_in_is_read_or_refused_by_name(parser, data, tmp_path_factory):
    """Random lines among valid ones get past the first checks (headers, field counts) to the deeper ones."""
    lines = parser.valid(data.draw)[0].splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(lines)))
        line = data.draw(st.one_of(LINE, LINE, NOISE)).encode() + data.draw(ENDINGS).encode()
        if at < len(lines) and data.draw(st.booleans()):
            lines[at] = line
        else:
            lines.insert(at, line)
    _valid_or_named_error(parser, tmp_path_factory.mktemp("m"), b"".join(lines))


@pytest.mark.parametrize("parser", [p for p in PARSERS if p.valid], ids=lambda p: p.name)
@FAST
@given(data=st.data())
def test_valid_annotations_parse_to_the_labels_of_the_protocol(parser, data, tmp_path_factory):
    content, expected = parser.valid(data.draw)
    result = parser.parse(parser.write(tmp_path_factory.mktemp("v"), content))
    assert {it["path"]: result.classes[it["label"]] for it in result.items} == expected


TEXT_PARSERS = [p for p in PARSERS if p.valid and p.name not in ("AffectNet npy", "CAER-S folders", "AFEW folders")]


@pytest.mark.parametrize("parser", TEXT_PARSERS, ids=lambda p: p.name)
@settings(FAST, max_examples=15)
@given(data=st.data())
def test_a_byte_order_mark_starting_any_line_changes_nothing(parser, data, tmp_path_factory):
    """Lists joined with `cat` carry a BOM into the middle of the file: the line is read, never dropped."""
    content, expected = parser.valid(data.draw)
    lines = content.splitlines(keepends=True)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:  # a GBK file (MAFW's captions): a UTF-8 BOM can only start it
        marked = [b"\xef\xbb\xbf" + lines[0], *lines[1:]] if data.draw(st.booleans()) else lines
    else:
        marked = [b"\xef\xbb\xbf" + line if data.draw(st.booleans()) else line for line in lines]
    result = parser.parse(parser.write(tmp_path_factory.mktemp("b"), b"".join(marked)))
    assert {it["path"]: result.classes[it["label"]] for it in result.items} == expected


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)


WORDS = st.lists(st.sampled_from(["happy", "sad", "a grin", "", " ", "happy"]) | st.text(max_size=4), max_size=5)
LABELS = st.one_of(JSON, WORDS, st.dictionaries(st.sampled_from(["happy", "", " ", "x"]), WORDS | st.text(),
                                                max_size=3))


@FAST
@given(obj=st.one_of(JSON, WORDS, st.fixed_dictionaries({"labels": LABELS}, optional={"templates": JSON | WORDS})))
def test_label_file_content_is_validated_not_trusted(obj):
    try:
        spec = label_spec_from_obj(obj, source="labels.json")
    except ValueError as e:
        assert str(e).startswith("labels.json: ")
        return
    _check_result(spec, Path("."))


# ------------------------------------------------------------------------------------------------ folder names
DECORATIONS = st.tuples(st.sampled_from(["", "0_", "3-", "12 ", " "]), st.sampled_from([str.lower, str.upper,
                        str.title, lambda s: s]), st.sampled_from(["", " ", "_"]))


@FAST
@given(name=st.sampled_from(sorted(SYNONYMS)), deco=DECORATIONS)
def test_every_synonym_maps_whatever_its_decoration(name, deco):
    prefix, case, suffix = deco
    assert canonical_label(prefix + case(name) + suffix) == SYNONYMS[name]


@FAST
@given(name=st.text(max_size=30))
def test_folder_name_mapping_never_fails_and_only_answers_known_classes(name):
    assert canonical_label(name) in (None, *CLASS_ORDER)


@FAST
@given(names=st.lists(st.one_of(st.sampled_from(["happy", "Sad", "3_angry", "joy", "Surprised", "neutral", "fear",
                                                 "disgusted", "contempt", "furniture", "happiness"]),
                                st.text(string.ascii_letters + "_- 0123456789", min_size=1, max_size=10)),
                      min_size=1, max_size=6, unique=True))
def test_class_folders_give_canonical_classes_or_a_named_error(names, tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    for n in names:
        d = root / n.strip(" ")
        if not n.strip(" ") or d.exists() or n.strip(" ").startswith("."):
            continue
        d.mkdir()
        (d / "0.png").write_bytes(b"not decoded here")
    try:
        data = image_folder(root)
    except DatasetError as e:
        assert str(root) in str(e)
        return
    assert data.classes == [c for c in CLASS_ORDER if c in data.classes]
    for it in data.items:
        assert canonical_label(it["path"].split("/")[0]) == data.classes[it["label"]]


# ------------------------------------------------------------------------------------------------ paths, frames
PATH = st.lists(st.sampled_from(["a", "b.jpg", "..", ".", "", "~", "\\..", "...", "/", "c d", "\u00e9"]), max_size=6)


@FAST
@given(parts=PATH, absolute=st.booleans())
def test_safe_join_never_returns_a_path_outside_the_root(parts, absolute, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    (root / "a").mkdir()
    rel = ("/" if absolute else "") + "/".join(parts)
    try:
        p = safe_join(root, rel)
    except PathEscapeError as e:
        assert "allow_outside" in str(e) or "invalid" in str(e)
        return
    assert Path(p).resolve().is_relative_to(root.resolve())


@FAST
@given(n=st.integers(1, 5000), segments=st.integers(1, 64), rule=st.sampled_from(["reference", "edge"]))
def test_frame_indices_are_always_inside_the_clip(n, segments, rule):
    idx = sample_frame_indices(n, segments, rule)
    assert len(idx) == segments and all(0 <= i < n for i in idx) and idx == sorted(idx)
