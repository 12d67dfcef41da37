"""GitHub and Slack: channels through which change requests arrive and reviews are decided."""
