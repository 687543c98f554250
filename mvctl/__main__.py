"""``python -m mvctl``: the same command as ``mvctl``."""

from mvctl.cli.app import main

if __name__ == "__main__":
    main()
