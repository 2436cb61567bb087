"""Tests-only WSGI apps and a runner that serves them with the production launchers."""
