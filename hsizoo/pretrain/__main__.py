"""``python -m hsizoo.pretrain ...`` (and ``torchrun ... -m hsizoo.pretrain ...``)."""
import sys

from hsizoo.cli.pretrain import main

sys.exit(main())
