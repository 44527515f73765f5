"""Features: the store and what goes into it. ``store`` (keyed, chunked, atomic, resumable directories),
``extraction`` (the one batched runner every kind of feature goes through), ``keys`` (what is extracted under which
key), ``extract`` (CLIP image / video / prompt features and teacher targets), ``service`` (get-or-extract: the one
place a store is found by key or made).

May import: ``data``, ``models``, ``prompts``, ``files``, ``devices``, ``errors``. Never runs, report, predict.
"""
