import sys

from dcgan_lib.cli import main

sys.exit(main())
