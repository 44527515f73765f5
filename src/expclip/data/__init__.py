"""Data: files on disk -> items and pixels. Decoding and the two preprocessing modes (``images``), video sampling and
readers (``video``), frames with their container times (``media``), live sources: cameras, URLs, stdin
(``sources``), item lists and folder readers (``datasets``), the dataset registry (``registry``) and the
benchmarks' native formats (``formats/``), DataLoader ``load(i)`` callables (``loaders``), path safety (``safe``),
face detection and tracks (``faces``), people's inputs for predictions (``inputs``), synthetic faces (``synthetic``).

May import: ``files``, ``devices``, ``errors``, ``labels``. Never models, features or anything above them.
"""
