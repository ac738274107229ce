import sys

from involvement_hub.cli import main

sys.exit(main())
