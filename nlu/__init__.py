"""NLU: the Rasa client used by calls, the Rasa sidecar process, training and evaluation."""
