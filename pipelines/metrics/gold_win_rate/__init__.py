"""The `gold_win_rate` evaluate module (a package only so that it ships in the wheel)."""
