"""What is sent: prompts, lengths, arrival schedules, ready as request specs for ``kitt.bench``."""
