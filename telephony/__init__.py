"""Telephony: thin codecs between providers' wire formats and the call pipeline's frames, and their webhooks."""
