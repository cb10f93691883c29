"""``nightwheels test`` and ``report``: install a project's dependencies from nightlies,
run its tests, bisect a breakage, and report it (GitHub issue, Markdown, the compatibility
record on a server).

Client-side. May import: ``core``, ``errors``, ``trackers``; nothing of the server side.
"""
