"""``python -m sdcodec``: the same command line as the ``sdcodec`` script."""

from sdcodec.cli import main

if __name__ == "__main__":
    main()
