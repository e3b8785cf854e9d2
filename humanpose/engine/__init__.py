"""Training and evaluation loops: the parts that own devices, processes and files."""
