#!/bin/sh
# pods-test/jupyter: JupyterLab on 8888; JUPYTER_TOKEN is its token (jupyter reads it from the
# environment, so it is never on a command line).
. /usr/local/lib/pods/common.sh
pods_one_line JUPYTER_TOKEN
mkdir -p "$JUPYTER_DATA"
export JUPYTER_RUNTIME_DIR=/tmp/jupyter/runtime JUPYTER_CONFIG_DIR=/tmp/jupyter/config
# Served through a proxy by host name: any Host is fine (the token guards it).
exec jupyter-lab --ip=0.0.0.0 --port=8888 --no-browser \
  --ServerApp.root_dir="$JUPYTER_DATA" --ServerApp.base_url="${JUPYTER_BASE_URL:-/}" \
  --ServerApp.allow_remote_access=True --ServerApp.trust_xheaders=True "$@"
