"""`schemagate`, the command-line client: submit, wait, read reports, approve and verify bundles.

Standard library only (urllib, argparse), so a CI image with nothing but Python can run it; it
speaks the published API (`openapi.yaml`) and imports nothing of the service.
"""
