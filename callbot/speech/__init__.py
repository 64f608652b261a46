"""Speech engines: Vosk recognition and piper synthesis, loaded once per process."""
