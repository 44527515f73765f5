"""Predictions on people's photos, folders and videos. ``engine`` (inputs -> faces -> batched, prefetched scoring ->
rows; knows no model, only ``encode`` and ``score``), ``table`` (row columns, DataFrame or list), ``rowfile``
(CSV / JSON-lines output that resumes), ``run`` (a run over many inputs to a file, with annotation), ``annotate``
(boxes and labels on images, video timelines per face), ``windows`` (sliding windows over a live source's frames),
``stream`` (a live source to a file, window row by window row).

May import: ``data``, ``zeroshot``, ``prompts``, ``labels`` and the leaf modules. Never runs, api or cli: ``api``
(:class:`expclip.ExpCLIP`) wires a model into the engine.
"""
