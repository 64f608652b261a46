"""Rasa components of callbot, loaded by Rasa itself (Python 3.10, the Rasa virtualenv): keep them free of any
import of callbot, which runs on another interpreter. ``nlu.training.rasa_environment`` puts this folder on
Rasa's ``PYTHONPATH``."""
