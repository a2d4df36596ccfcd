"""Province by province: switching 128 on (or off) for a province, from a Jalali or ISO date."""
