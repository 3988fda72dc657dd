"""The `reward_accuracy` evaluate module (a package only so that it ships in the wheel)."""
