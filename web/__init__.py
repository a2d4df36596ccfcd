"""The inspection units' page: a signed link opens one complaint for one unit, which can
acknowledge it, resolve it with an outcome, or forward it to another unit."""
