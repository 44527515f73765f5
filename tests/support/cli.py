"""Running the CLI in a test and checking that it ended the way a user should see it end."""

from __future__ import annotations

from pathlib import Path


def user_error(argv: list, capsys, *says: str) -> str:
    """Run ``expclip`` in-process; it must end in a one-line user error (rc 2, no traceback, not called a bug) that
    contains every ``says``. Returns stderr."""
    from expclip.cli import main

    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "bug in expclip" not in err and "Traceback" not in err, err
    for s in says:
        assert s in err, err
    return err


def no_store(root: Path) -> bool:
    """True when no feature store was written under ``root`` (nothing was computed)."""
    return not list(Path(root).glob("*/meta.json")) if Path(root).exists() else True
