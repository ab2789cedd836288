# shellcheck shell=bash
# pods-test/jupyter:bookworm: JupyterLab (PyPI, see requirements.txt) in a venv on Debian's
# Python, on 8888. JUPYTER_TOKEN (required) is the token; JUPYTER_BASE_URL (/) the path it is
# served under (a pod is served at its host's root). Notebooks and files live in
# /var/lib/pods/jupyter. Arguments go to jupyter-lab.
IMAGE_TAG=bookworm
PACKAGES=(python3 python3-venv)
IMAGE_ENV=(JUPYTER_DATA=/var/lib/pods/jupyter)
PORTS=(8888)
IMAGE_PATH=/opt/jupyter/bin:$IMAGE_PATH

# On the host: the wheels, for the image's Python (bookworm: 3.11) whatever the host's is.
fetch() {
  local arch py=3.11 venv=$cache_root/pip-venv
  arch=$(uname -m)
  # pip of a venv of its own: Debian's python3 comes without one (python3-venv brings it).
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || pods_die "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --python-version "$py" --implementation cp --abi "cp${py/./}" \
    --platform "manylinux_2_36_$arch" --platform "manylinux_2_34_$arch" --platform "manylinux_2_28_$arch" \
    --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" \
    -d "$stage/wheels" -r "$recipe_dir/requirements.txt" >"$stage.pip.log" 2>&1 ||
    { tail -n 30 "$stage.pip.log" >&2; pods_die "pip could not download the Jupyter wheels (log: $stage.pip.log)"; }
}

after_apt() {
  cp -r "$stage/wheels" "$rootfs/tmp/wheels"
  cp "$recipe_dir/requirements.txt" "$rootfs/tmp/requirements.txt"
  in_chroot python3 -m venv /opt/jupyter
  in_chroot /opt/jupyter/bin/pip install --quiet --no-index --no-cache-dir --disable-pip-version-check \
    --find-links /tmp/wheels -r /tmp/requirements.txt
  rm -rf "$rootfs/tmp/wheels" "$rootfs/tmp/requirements.txt"
  find "$rootfs/opt/jupyter" -name __pycache__ -prune -exec rm -rf {} +
}
