import sys

from deapnn.cli import main

sys.exit(main())
