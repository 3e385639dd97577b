"""What the CLI does, kept out of `starter.py` (which only parses): runs, schedules, reports."""
