"""Models: the backbone (any CLIP-family dual encoder through transformers, read with its family's conventions from
``families``; named checkpoints in ``presets``), the teacher (BLIP-2's image path + the Flan-T5 encoder, no decoder),
the projection heads registry, hub resolution and content fingerprints, multi-GPU placement of the teacher, and tiny
random-weight models of every family for tests and the demo.

May import: ``data`` (preprocessing), ``files``, ``devices``, ``schema``, ``errors``. Never features, runs or anything above.
"""
