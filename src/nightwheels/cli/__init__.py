"""The ``nightwheels`` command: an edge that parses arguments, calls one service or client
function, and prints one line per result (``exits``: one line and a code per error).

May import every layer below it. Commands import their heavy dependencies inside the
command (start-up time: see ``benchmarks/startup.py``); ``upload``, ``test`` and ``report``,
which every CI job runs, parse with argparse (``parsing``) and never load typer.
"""
