"""Train, evaluate and save chest X-ray classifiers (research use only, not a medical device)."""
