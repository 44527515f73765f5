"""Data: files on disk -> items and pixels. Decoding and the two preprocessing modes (``images``), video sampling and
readers (``video``), item lists and folder readers (``datasets``), the dataset registry (``registry``) and the
benchmarks' native formats (``formats/``), DataLoader ``load(i)`` callables (``loaders``), path safety (``safe``),
face detection (``faces``), people's inputs for predictions (``inputs``), synthetic faces (``synthetic``).

May import: ``files``, ``devices``, ``errors``, ``labels``. Never models, features or anything above them.
"""
