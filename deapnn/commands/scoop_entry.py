"""Entry script that SCOOP runs as ``__main__`` when ``deapnn ... --workers N`` re-launches itself."""
import sys

from deapnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
