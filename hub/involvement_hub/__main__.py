import sys

from involvement_hub.cli.main import main

sys.exit(main())
