"""Schema migrations, one file each, ``NNNN_<slug>.py`` (``revision`` ids are their own)."""
