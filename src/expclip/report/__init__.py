"""Reports, built only from result cells and training histories: ``tables`` (cells -> aggregated tables: the one
aggregator, every layout, Markdown/CSV rendering), ``results`` (the files of an evaluation: cell JSONs, CSVs,
results.md, confusion PNGs), ``figures`` (the paper's pictures), ``html`` (the page's HTML/Markdown), ``page``
(``expclip report RUN_DIR``: collect what a run directory holds and write the page).

May import: ``labels``, ``prompts``, ``data.registry`` (dataset names), ``models`` (names of backbones and
instructions), ``checkpoint``, the leaf modules. No model runs here and no store is opened.
"""
