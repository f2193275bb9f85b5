"""Faces: the command line (``cli``) and plots (``plots``)."""
