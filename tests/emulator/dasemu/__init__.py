"""What moto lacks for das-setup, added to moto's own server process (see server.py)."""
