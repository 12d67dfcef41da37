"""`manage.py demo` and other commands that drive the services from a shell."""
