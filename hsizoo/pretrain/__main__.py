"""``python -m hsizoo.pretrain ...`` (and ``torchrun ... -m hsizoo.pretrain ...``)."""
import sys

from .cli import main

sys.exit(main())
