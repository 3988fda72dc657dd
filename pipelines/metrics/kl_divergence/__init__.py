"""The `kl_divergence` evaluate module (a package only so that it ships in the wheel)."""
