"""tinydeploy: put ML models on microcontrollers and prove that they run there."""

__version__ = "0.1.0"
