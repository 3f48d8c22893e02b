import sys

from nadfit.fitting.cli import main

sys.exit(main())
