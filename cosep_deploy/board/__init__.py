"""Jetson boards: the deploy bundle written on the host, and board detection used on the board itself."""
