"""Code emission: the firmware project (platformio.ini, sketch, model sources) from Jinja templates."""
