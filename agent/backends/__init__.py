"""Where actions go: the simulator and the real robot."""
