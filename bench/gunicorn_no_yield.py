"""gunicorn_config.py without the yield after each request: the "before" of that tuning.

gunicorn -c bench/gunicorn_no_yield.py wsgi:app
"""

from gunicorn_config import *  # noqa: F403 - every setting of the shipped configuration


def post_request(worker, req):
    """gunicorn's own default: nothing."""
