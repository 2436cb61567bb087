# A small production image: gunicorn serving the app on port 5000 as a non-root user.
#   docker build -t flask-app .
#   docker run --rm -p 80:5000 -e SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" flask-app
# Guides: docs/docker.md, docs/kubernetes.md.
FROM python:3.11-slim-bookworm

# Logs straight to `docker logs`. Nothing writes bytecode at run time: it is compiled at
# build time (below), and the root file system is meant to be read-only.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production

WORKDIR /app

# Dependencies first, in one layer that is rebuilt only when requirements.txt changes,
# not on every code change. Every dependency is a wheel, so no compiler is needed or left
# behind; pip keeps no cache. pip compiles their bytecode as it installs: about 10 MB, and
# half a second less at every process start, which a read-only root could never cache.
# gevent's, greenlet's and zope.interface's own test suites (5 MB) are never imported.
# The user has a fixed uid, so orchestrators can check runAsNonRoot.
COPY requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        -r requirements.txt \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && rm -rf "$site/gevent/tests" "$site/greenlet/tests" \
        "$site/zope/interface/tests" "$site/zope/interface/common/tests" \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

# The code, owned by root and read-only to the user that runs it, whatever modes the
# checkout had; its bytecode compiled now, like the dependencies'. .dockerignore lets in
# only what the app needs (never .env, .git, tests or a local venv).
COPY . .
RUN python -m compileall -q /app && chmod -R u=rwX,go=rX /app

USER 10001:10001

# The one internal port (PORT=5000 by default, as in .replit and the Procfile). Map it to
# whatever the host needs: -p 80:5000 serves port 80 without any privilege in the image.
EXPOSE 5000

# Liveness with the interpreter already in the image (slim has no curl): exit 0 when
# /healthz answers 200, 1 otherwise. It follows PORT if you change it at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

# Exec form: gunicorn is PID 1 itself, no shell in between, so the stop signal reaches
# it; gunicorn drains requests in flight on TERM for GRACEFUL_TIMEOUT (8 s, under
# docker stop's 10 s) and reaps its own workers. A server without its own signal
# handling and child reaping as PID 1 (the Flask dev server, or waitress through
# waitress-serve) needs an init in front: `docker run --init`, or tini as ENTRYPOINT:
#   RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
#   ENTRYPOINT ["/usr/bin/tini", "--"]
# because PID 1 ignores any signal it has no handler for, and so would never stop on TERM.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
