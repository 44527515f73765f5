"""What the tests share besides fixtures (those are in ``tests/conftest.py``). Test modules import from here, never
from one another (``tests/test_layout.py`` checks it).

- :mod:`support.media`: images, frame folders and videos whose pixels say which frame they are, face clips.
- :mod:`support.formats`: each benchmark's download in its native layout, one writer per format, and the native
  label tables of PROTOCOL.md.
- :mod:`support.native`: tiny copies of each benchmark (through those writers), with the labels a reader must find.
- :mod:`support.format_cases`: hypothesis draws of valid annotation files, written by the same writers, for the
  parser fuzzers.
- :mod:`support.zoo`: the broken-file zoo (every kind of bad image and video, with the outcome each is owed).
- :mod:`support.integrity`: files that lie about themselves (float and NaN TIFFs, an AVI claiming 2**31 - 1 frames,
  a rotated MP4, a FIFO), a deadline that fails a hang, and a mean-colour stand-in encoder (issue 14's tests).
- :mod:`support.kill`: the kill harness (SIGKILL at every commit point, or when a file appears; the jobs it runs),
  and trees compared byte for byte.
- :mod:`support.browser`: headless Chromium over the DevTools pipe, to render a report offline.
"""
