"""python -m drill: the failover drill (scripts/drill)."""
import sys

from drill.run import main

sys.exit(main())
