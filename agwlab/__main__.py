import sys

from agwlab.cli import main

sys.exit(main())
