"""Ways in and out for machines: GitHub and Slack integrations, outbound webhooks, and the
signatures and outbound-request guard they share."""
