"""Where the models compute (device, mixed precision), the optimiser and schedule training shares
(timm's, :mod:`.optim`), and the machine facts recorded with results."""
