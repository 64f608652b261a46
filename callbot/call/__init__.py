"""A call: one pipeline of small async stages (listen, understand, decide, speak) per phone call."""
