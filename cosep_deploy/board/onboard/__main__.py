"""``python3 -m cosep_onboard`` inside a bundle (or ``python -m cosep_deploy.board.onboard``)."""

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
