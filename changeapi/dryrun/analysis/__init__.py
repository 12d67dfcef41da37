"""Pure analysis of a traced run: statement classes, estimates, lock timelines, queue risk, findings."""
