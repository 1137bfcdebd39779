"""Runners put a built firmware on a board and give back the URL of its serial port."""
