# A small production image: gunicorn serving the app on port 5000 as a non-root user.
#   docker build -t flask-app .
#   docker run --rm -p 80:5000 -e SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" flask-app
# Guide: docs/docker.md.
FROM python:3.11-slim-bookworm

# No .pyc files in the image, logs straight to `docker logs`, pip quiet and cacheless.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when requirements.txt
# changes, not on every code change.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code, owned by root and read-only to the user that runs it. .dockerignore lets in
# only what the app needs (never .env, .git or a local venv).
COPY . .

# A system user with a fixed uid, so orchestrators can check runAsNonRoot.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
USER 10001:10001

# The one internal port (PORT=5000 by default, as in .replit and the Procfile). Map it to
# whatever the host needs: -p 80:5000 serves port 80 without any privilege in the image.
EXPOSE 5000

# Liveness with the interpreter already in the image (slim has no curl): exit 0 when
# /healthz answers 200, 1 otherwise. It follows PORT if you change it at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

# Exec form: gunicorn is PID 1 itself, no shell in between, so `docker stop`'s SIGTERM
# reaches it; gunicorn handles TERM (drains requests in flight for GRACEFUL_TIMEOUT,
# 8 s, under docker stop's 10 s) and reaps its own workers. A server without its own
# signal handling and child reaping as PID 1 (the Flask dev server, or waitress through
# waitress-serve) needs an init in front: `docker run --init`, or tini as ENTRYPOINT:
#   RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
#   ENTRYPOINT ["/usr/bin/tini", "--"]
# because PID 1 ignores any signal it has no handler for, and so would never stop on TERM.
CMD ["gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
