"""Readers for the native on-disk formats of the FER benchmarks (one module per family of formats).

Every reader returns an :class:`~expclip.data.datasets.ItemList` whose labels are indices into its ``classes``
(canonical names, the reference's class order). Native ids are mapped through explicit tables, never through
folder sorting; a label outside the class set is a :class:`~expclip.data.datasets.DatasetError` naming the file
and line.
"""
