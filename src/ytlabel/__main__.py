import sys

from ytlabel.cli import main

sys.exit(main())
