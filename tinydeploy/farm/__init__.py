"""The exporter side of a board farm: boards on this machine offered to tinydeploy clients through labgrid.

`tinydeploy farm serve` runs a board service (tinydeploy.farm.service) and labgrid's own exporter beside it:
every board is one labgrid resource group with a `program` port (a NetworkSerialPort served here: a client sends
the firmware to it) and a `uart` port (the board's serial port: served here for a virtual board, by labgrid's
ser2net for a USB board). Clients reach them through tinydeploy.runners.labgrid.
"""
