"""The fan-out over the fleet (threads, processes) and one collection run."""
