"""Pure rules of the index, no I/O: names, filenames, wheel tags, METADATA, versions,
permissions, token formats, retention and freshness, simple-page rendering.

May import: ``errors``, the standard library and ``packaging``; nothing else of nightwheels
(a test checks). Every other layer may import ``core``.
"""
