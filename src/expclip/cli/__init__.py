"""The ``expclip`` command line: wiring only. ``main(argv) -> int``.

Each group of subcommands lives in its own module with an ``add_parsers(sub)``; the options they share are in
:mod:`.options`.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading

from ..errors import ExpclipError
from ..files import __version__, no_space
from . import analysis, catalog, pipeline, predict, score
from .options import EPILOG, refuse_empty_values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="expclip", description="Zero-shot facial expression recognition with Exp-CLIP "
                                "(CLIP + a head trained to match an LLM's view of the face).", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"expclip {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    pipeline.add_parsers(sub)
    catalog.add_parsers(sub)
    predict.add_parsers(sub)
    analysis.add_parsers(sub)
    score.add_parsers(sub)
    refuse_empty_values(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s")
    for noisy in ("httpx", "huggingface_hub", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    previous = _on_sigterm_interrupt()
    try:
        _quiet_transformers()
        return int(args.fn(args) or 0)
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, _Terminated) else "interrupted"
        print(f"\n{what}: finished work is kept (store chunks, trained seeds); rerun the same command to resume",
              file=sys.stderr)
        return 143 if isinstance(e, _Terminated) else 130
    except ExpclipError as e:  # the user's to fix: the message says how
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        full = no_space(e, e.filename or "a file")
        if full is not None:  # a full disk, a quota, a file-size limit or a short write: one line, what to do
            what = "disk full" if full.errno == errno.ENOSPC else full.strerror.lower()
            print(f"error: {what} while writing {full.filename}; {full.advice}", file=sys.stderr)
            return 1
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (FileNotFoundError, FileExistsError)) else 1
    except Exception as e:  # not the user's input: a bug, said so in one line; the traceback with -v
        if args.verbose:
            raise
        print(f"error: {type(e).__name__}: {e} (this is a bug in expclip, not a problem with your input: rerun with "
              "-v for the traceback and report it)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _quiet_transformers() -> None:
    """transformers' warnings and progress bars off, without importing it (``expclip list`` and ``--help`` run no
    model, and importing transformers costs seconds): the environment tells it when it is imported; if it already
    is (expclip called from Python), it is told directly."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit or preemption, ``kill``): ends the command as Ctrl-C does."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _on_sigterm_interrupt():
    """Make SIGTERM unwind like Ctrl-C (the same message, temporary files cleaned up by their ``finally``), unless
    the host process already handles it or this is not the main thread. Returns the handler to restore, or None."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


if __name__ == "__main__":
    sys.exit(main())
