import sys

from vla_agent.cli import main

sys.exit(main())
