#!/bin/sh
# Prints flask-app@.service, the template for several instances on one machine, made
# from flask-app.service (the one unit kept by hand): the port becomes the instance
# name (%i), and each instance gets a runtime directory of its own (systemd removes
# one when its unit stops, so instances must not share it). Guide: docs/zero-downtime.md.
#
#   sh deploy/systemd/instance-template.sh | sudo tee /etc/systemd/system/flask-app@.service >/dev/null
#   sudo systemctl daemon-reload && sudo systemctl enable --now flask-app@8000 flask-app@8001
set -eu
# The unit's own header (how to install the single unit) is replaced by a line saying
# where the template comes from; its settings and their comments are kept.
exec sed \
    -e '1i\
# flask-app@.service: made from flask-app.service by deploy/systemd/instance-template.sh;\
# how to install it and deploy with it: docs/zero-downtime.md.' \
    -e '1,/^$/d' \
    -e 's/8000/%i/g' \
    -e 's/^\(RuntimeDirectory=\|Environment=TMPDIR=\/run\/\)flask-app$/\1flask-app-%i/' \
    "$(dirname "$0")/flask-app.service"
