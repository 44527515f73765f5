"""Systems scored from their own predictions (``expclip score``) in the tables, and the notes that keep a
comparison of like with like: a system scored on fewer folds than a dataset has, and what was left out or counted
wrong under which rule.

A scored cell is a result cell whose ``prompt_set`` is :data:`~expclip.prompts.OWN_PREDICTIONS`: it used no
prompts, so a table of one prompt set shows it beside that prompt set's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..data.registry import DATASETS, display_name
from ..prompts import OWN_PREDICTIONS


def is_scored(cell: dict) -> bool:
    """Whether a cell (or an aggregated row) was scored from a system's own predictions."""
    return cell.get("prompt_set") == OWN_PREDICTIONS


def of_prompt_set(cells: Iterable[dict], prompt_set: str) -> list[dict]:
    """The cells (or aggregated rows) of ``prompt_set``, and every scored system's: they used no prompts, so they are
    rows of every prompt set's tables."""
    return [c for c in cells if c["prompt_set"] == prompt_set or is_scored(c)]


def _dataset_folds(dataset: str, seen: set) -> int:
    """How many folds a dataset has: the registry's (DFEW, MAFW: 5), else the most any system was scored on."""
    spec = DATASETS.get(dataset)
    return len(spec.folds) if spec is not None and len(spec.folds) > 1 else len(seen)


def fewer_folds(cells: Iterable[dict]) -> list[tuple[str, str, list, int]]:
    """(group, dataset, its folds, the dataset's fold count) of every system scored on fewer folds than the
    dataset has (folds are averaged, so such a value is not the 5-fold mean of the others)."""
    folds: dict[tuple[str, str], set] = defaultdict(set)
    every: dict[str, set] = defaultdict(set)
    for c in cells:
        if c.get("fold") is not None:
            folds[(c["group"], c["dataset"])].add(c["fold"])
            every[c["dataset"]].add(c["fold"])
    out = []
    for (g, d), f in folds.items():
        n = _dataset_folds(d, every[d])
        if len(f) < n:
            out.append((g, d, sorted(f), n))
    return out


def fewer_folds_note(cells: Iterable[dict]) -> str:
    """"" or one sentence naming each system scored on fewer folds, for a table's caption."""
    few = fewer_folds(cells)
    if not few:
        return ""
    parts = [f"{g} on {display_name(d)}: {len(f)} of {n} folds ({', '.join(map(str, f))})" for g, d, f, n in few]
    return "Fewer folds (the mean of these only): " + "; ".join(parts) + "."


def scored_notes(cells: Iterable[dict]) -> list[str]:
    """One line per (scored system, dataset): samples scored of the test set, missing and outside answers with the
    rule applied to each, the prediction file and its sha256."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        if is_scored(c) and "counts" in c:
            by[(c["group"], c["dataset"])].append(c)
    lines = []
    for (g, d), cs in by.items():
        cs = sorted(cs, key=lambda c: c.get("fold") or 0)
        total = {k: sum(int(c["counts"][k]) for c in cs) for k in ("test", "scored", "missing", "outside")}
        rules = cs[0].get("rules", {})
        folds = [c["fold"] for c in cs if c.get("fold") is not None]
        src = cs[0].get("source", {})
        lines.append(
            f"{g} on {display_name(d)}" + (f" (fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))})"
                                           if folds else "")
            + f": {total['scored']} of {total['test']} test samples scored "
            f"({100 * total['scored'] / max(total['test'], 1):.1f}%); {total['missing']} without a prediction "
            f"({'counted wrong' if rules.get('missing') == 'wrong' else 'left out'}), {total['outside']} answers "
            f"outside the label set ({'left out' if rules.get('outside') == 'drop' else 'counted wrong'}); "
            f"predictions {src.get('name')} (sha256 {str(src.get('sha256'))[:12]})")
    return lines


def notes_markdown(cells: list[dict]) -> str:
    """The notes of :func:`fewer_folds_note` and :func:`scored_notes` as Markdown ("" when there are none)."""
    out = []
    few = fewer_folds_note(cells)
    if few:
        out += [few, ""]
    notes = scored_notes(cells)
    if notes:
        out += ["Scored from their own predictions (expclip score):", ""] + [f"- {n}" for n in notes] + [""]
    return "\n" + "\n".join(out) if out else ""  # a paragraph of its own after a table
