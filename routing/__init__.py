"""Routing: what the bot does with an understood (or not understood) caller request."""
