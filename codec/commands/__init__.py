"""The command line's commands, one module per group; the root ``cli.py`` assembles them into one app.

Each command parses its options, calls the library (``codec/...``, ``benchmarks/``) and prints;
``reporting`` turns failures into one line and an exit code, ``options`` declares the options that
several commands share, once.
"""
