"""Wrong or surprising behaviour a new user hits: moved model folders, signals while workers start, what is named
how, what is written where, and what the README promises."""

from __future__ import annotations

import json
import shutil

import pytest

from expclip.cli import main
from support.cli import user_error


# ------------------------------------------------------------------------------------------------ 14. offline error
def test_the_offline_error_is_one_short_line_with_our_remedy(face_pool, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = user_error(["extract", "--data", face_pool, "--backbone", "someone/not-cached", "--store", tmp_path], capsys,
                     "someone/not-cached", "hf download someone/not-cached", "save_pretrained")
    line = err.strip()
    assert "\n" not in line and len(line) < 300, line
    assert "local_files_only" not in line  # Hugging Face's advice names its API's options, not ours
    with pytest.raises(Exception) as e:  # -v: the hub's own message is the cause, shown with the traceback
        main(["-v", "extract", "--data", str(face_pool), "--backbone", "someone/not-cached", "--store", str(tmp_path)])
    assert e.value.__cause__ is not None
