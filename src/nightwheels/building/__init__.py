"""Build nightly wheels: stamp a ``.devYYYYMMDDHHMM`` version and run the ``build`` frontend.

Client-side (``nightwheels build``). May import: ``core``, ``errors``; never the server side
(``db``, ``storage``, ``services``, ``server``, ``web``).
"""
