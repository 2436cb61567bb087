#!/bin/sh
# Prints flask-app@.service, the template for several instances on one machine, made
# from flask-app.service (the one unit kept by hand): the port becomes the instance
# name (%i), and each instance gets a runtime directory of its own (systemd removes
# one when its unit stops, so instances must not share it). Guide: docs/zero-downtime.md.
#
#   sh deploy/systemd/instance-template.sh | sudo tee /etc/systemd/system/flask-app@.service >/dev/null
#   sudo systemctl daemon-reload && sudo systemctl enable --now flask-app@8000 flask-app@8001
set -eu
exec sed \
    -e '1i\
# flask-app@.service: made from flask-app.service by deploy/systemd/instance-template.sh.' \
    -e 's/8000/%i/g' \
    -e 's/^\(RuntimeDirectory=\|Environment=TMPDIR=\/run\/\)flask-app$/\1flask-app-%i/' \
    "$(dirname "$0")/flask-app.service"
