"""Where the models compute (device, mixed precision) and the machine facts recorded with results."""
