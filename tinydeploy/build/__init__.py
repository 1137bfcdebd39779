"""Building generated firmware projects (PlatformIO, driven in a tinydeploy-owned core directory)."""
