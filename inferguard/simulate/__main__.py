import sys

from inferguard.simulate.cli import main

sys.exit(main())
