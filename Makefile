# Entry points for people and CI. Everything installs itself on a fresh
# Debian 12/13 machine as root: apt packages, a venv at .venv, the package.
SHELL := /bin/bash
# Debian's interpreter, never a pyenv shim: it is what a PVE host runs.
PY ?= /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
# What `make demo` needs: LXC, nftables, the venv, gcc for the exec shim.
DEMO_PACKAGES := lxc busybox-static nftables iproute2 python3-venv gcc libc6-dev tar gzip
# What the tests need on top: the peers (skopeo, umoci, GNU tar), a real
# registry, zfs-fuse pools, htpasswd/openssl for registry auth and TLS, an sshd
# per cluster "node" (tests/support/sshnodes.py).
TEST_PACKAGES := $(DEMO_PACKAGES) skopeo umoci docker-registry zfs-fuse apache2-utils \
	openssl util-linux zstd uidmap bridge-utils jq \
	openvswitch-switch strace openssh-server openssh-client

.PHONY: deps deps-demo venv dev lint test test-fast test-trixie demo demo-pve bench deb clean pve-sim

# The static exec shim bind-mounted into containers (see hooks/lxcri-init.c).
hooks/lxcri-init: hooks/lxcri-init.c
	gcc -static -Os -s -Wall -Wextra -Werror -o $@ $<

# Installs only what is missing, so a second run costs nothing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-demo:
	$(call apt_install,$(DEMO_PACKAGES))

deps:
	$(call apt_install,$(TEST_PACKAGES))

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

# Strict editable mode links the working tree into the venv so mypy and the
# tests see plugin/ as lxcri_pve; re-run on every build to pick up new modules.
venv: deps-demo $(VPY) hooks/lxcri-init
	$(VPY) -m pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=strict

lint: deps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The host's suite and the trixie root's run side by side (each waits on
# containers more than on the CPU); the trixie output follows the host's.
test: lint hooks/lxcri-init
	@mkdir -p build
	@tests/trixie/run $(TRIXIE_ARGS) >build/test-trixie.log 2>&1 & trixie=$$!; \
	$(VENV)/bin/pytest; host=$$?; \
	wait $$trixie; rc=$$?; \
	echo "===== the suite in the Debian trixie root (build/test-trixie.log) ====="; \
	cat build/test-trixie.log; \
	echo "host suite: exit $$host; trixie root: exit $$rc"; \
	[ $$host -eq 0 ] && [ $$rc -eq 0 ]

# The suite again in a Debian trixie root (Proxmox VE 9's userland: Python 3.13,
# Debian's python3-* packages, util-linux 2.41, lxc 6.0), built once and cached
# in TRIXIE_ROOT outside the clone; see tests/trixie/run. TRIXIE_ARGS: pytest's.
TRIXIE_ARGS ?=
test-trixie: hooks/lxcri-init
	tests/trixie/run $(TRIXIE_ARGS)

test-fast: deps venv
	$(VENV)/bin/pytest -m "not slow"

demo: venv
	$(VPY) -m lxcri_pve.demo

# The demo image as a Proxmox CT through the pve-local backend, on the simulator.
demo-pve: venv
	$(VPY) -m tests.pve.demo

# The Proxmox simulator in the foreground (tests/pvesim): HTTPS API on
# 127.0.0.1:PVESIM_PORT, state in PVESIM_DIR (DIR/ca.pem, DIR/token,
# DIR/requests.jsonl, DIR/etc-pve). Point pct/pvesh (tests/pvesim/bin) at it
# with PVESIM_DIR=DIR; point lxcri with LXCRI_PVE_URL, _TOKEN_FILE, _CA.
# PVESIM_BRIDGE=vmbr0:10.99.0.1/24 also creates that bridge for the CTs' netN.
PVESIM_DIR ?= /var/tmp/pvesim
PVESIM_PORT ?= 8006
PVESIM_BRIDGE ?=
pve-sim: venv
	mkdir -p $(PVESIM_DIR) && chmod 755 $(PVESIM_DIR)
	$(VPY) -m tests.pvesim --dir $(PVESIM_DIR) --port $(PVESIM_PORT) \
		$(if $(PVESIM_BRIDGE),--bridge $(PVESIM_BRIDGE))

# Each prints lxcri's time beside its peer's (skopeo, umoci/tar, lxc-oci, python3) and the ratio.
bench: venv
	$(VPY) -m bench.pull
	$(VPY) -m bench.unpack
	$(VPY) -m bench.run
	$(VPY) -m bench.hooks
	$(VPY) -m bench.upgrade
	$(VPY) -m bench.exporter
	$(VPY) -m bench.cluster

# The Debian package (needs debhelper dh-python pybuild-plugin-pyproject python3-all
# build-essential fakeroot). A clean PATH: pybuild must find Debian's python3.
deb:
	env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
