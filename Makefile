# Entry points for people and CI. Everything installs itself on a fresh
# Debian 12/13 machine as root: apt packages, a venv at .venv, the package.
SHELL := /bin/bash
# Debian's interpreter, never a pyenv shim: it is what a PVE host runs.
PY ?= /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
# What `make demo` needs: LXC, nftables, the venv, gcc for the exec shim.
DEMO_PACKAGES := lxc busybox-static nftables iproute2 python3-venv gcc libc6-dev tar gzip
# Building the Debian package and its install test (tests/debian): debhelper,
# what debian/control's Build-Depends lists, lintian, debootstrap.
DEB_PACKAGES := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
	python3-click python3-yaml dpkg-dev fakeroot lintian debootstrap
# What the tests need on top: the peers (skopeo, umoci, GNU tar), a real
# registry, zfs-fuse pools, htpasswd/openssl for registry auth and TLS,
# containerd (with ctr and runc) for lxcri-runtime's end-to-end tests, an sshd
# per cluster "node" (tests/support/sshnodes.py).
TEST_PACKAGES := $(DEMO_PACKAGES) skopeo umoci docker-registry zfs-fuse apache2-utils \
	openssl util-linux zstd uidmap bridge-utils jq \
	openvswitch-switch strace tmux containerd openssh-server openssh-client \
	$(DEB_PACKAGES)

.PHONY: deps deps-demo venv dev lint test test-fast test-trixie demo demo-pve bench deb clean pve-sim \
	snapshots-update tui-screenshots install-venv uninstall-venv

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
	$(VPY) -m pip install -q -c constraints.txt -c constraints-dev.txt -e '.[dev]' --config-settings editable_mode=strict

lint: deps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The host's suite and the trixie root's run side by side (each waits on
# containers more than on the CPU); the trixie output follows the host's. The
# trixie root proves the platform: it leaves out the tests marked exhaustive (one
# code path again per crash step), which the host runs.
test: lint hooks/lxcri-init
	@mkdir -p build
	@tests/trixie/run -m "not exhaustive" $(TRIXIE_ARGS) >build/test-trixie.log 2>&1 & trixie=$$!; \
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

# Accept the dashboard's current pictures (tests/tui/__snapshots__) after looking at
# them (a failed run writes snapshot_report.html with old and new side by side).
snapshots-update: venv
	$(VENV)/bin/pytest tests/tui/test_snapshots.py --snapshot-update

# An SVG of each dashboard screen into docs/tui/, from the snapshot tests' data.
tui-screenshots: venv
	$(VPY) -m tests.tui.screenshots docs/tui

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

# Each prints lxcri's time beside its peer's (skopeo, umoci/tar, lxc-oci, runc, python3) and the ratio.
bench: venv
	$(VPY) -m bench.pull
	$(VPY) -m bench.unpack
	$(VPY) -m bench.run
	$(VPY) -m bench.hooks
	$(VPY) -m bench.upgrade
	$(VPY) -m bench.exporter
	$(VPY) -m bench.tui
	$(VPY) -m bench.runtime
	$(VPY) -m bench.cluster

# The Debian package, in the parent directory (../lxcri_VERSION_ARCH.deb), as
# dpkg-buildpackage puts it; debian/rules uses Debian's python3 whatever PATH
# holds. tests/debian/test_package.py builds it, checks it with lintian and
# installs it with apt into clean trixie and bookworm roots (make test).
deb:
	$(call apt_install,$(DEB_PACKAGES))
	dpkg-buildpackage -us -uc -b

# Proxmox VE 8 (Debian bookworm): Debian's python3-click, -rich, -textual,
# -structlog... are older than what lxcri runs on (constraints.txt: trixie's),
# so the .deb cannot install there. Instead, as root in a checkout:
# `apt-get install -y make && make install-venv` puts lxcri with exactly the
# pinned libraries in a venv (VENV_PREFIX, from PyPI), and the rest where the
# package would: hooks and shim in /usr/lib/lxcri (the hooks run by the venv's
# python), /usr/local/bin/lxcri, man pages, completion, /etc/lxcri/config.yaml
# (kept if present), /var/lib/lxcri. `make uninstall-venv` removes it all
# (PURGE=1: config.yaml and an empty state root too). Tested on a clean
# bookworm root by tests/debian/test_package.py.
VENV_PREFIX ?= /opt/lxcri
VENV_PY := $(VENV_PREFIX)/bin/python3
LOCAL_SHARE := /usr/local/share
VENV_HOOKS := lxcri-hook lxcri-net-up lxcri-pve-hookscript
install-venv: hooks/lxcri-init
	$(call apt_install,lxc nftables python3-venv)
	$(PY) -m venv $(VENV_PREFIX)
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -c constraints.txt .
	install -d -m 0755 /usr/lib/lxcri
	install -m 0755 hooks/lxcri-init /usr/lib/lxcri/lxcri-init
	for h in $(VENV_HOOKS); do \
		sed '1s|^#!.*|#!$(VENV_PY)|' hooks/$$h >/usr/lib/lxcri/$$h.tmp && \
		chmod 0755 /usr/lib/lxcri/$$h.tmp && mv /usr/lib/lxcri/$$h.tmp /usr/lib/lxcri/$$h || exit 1; \
	done
	ln -sfn $(VENV_PREFIX)/bin/lxcri /usr/local/bin/lxcri
	$(VENV_PY) -m lxcri_pve.cli.manpages $(LOCAL_SHARE)/man/man1 >/dev/null
	install -d $(LOCAL_SHARE)/bash-completion/completions $(LOCAL_SHARE)/zsh/site-functions
	_LXCRI_COMPLETE=bash_source $(VENV_PREFIX)/bin/lxcri >$(LOCAL_SHARE)/bash-completion/completions/lxcri
	_LXCRI_COMPLETE=zsh_source $(VENV_PREFIX)/bin/lxcri >$(LOCAL_SHARE)/zsh/site-functions/_lxcri
	install -d -m 0755 /etc/lxcri
	[ -e /etc/lxcri/config.yaml ] || (umask 077 && $(VENV_PY) -m lxcri_core.config_example >/etc/lxcri/config.yaml)
	$(VENV_PY) -c 'from pathlib import Path; from lxcri_core.containers.private import secure_root; \
		secure_root(Path("/var/lib/lxcri"))'

uninstall-venv:
	rm -f /usr/local/bin/lxcri $(LOCAL_SHARE)/man/man1/lxcri.1 $(LOCAL_SHARE)/man/man1/lxcri-*.1 \
		$(LOCAL_SHARE)/bash-completion/completions/lxcri $(LOCAL_SHARE)/zsh/site-functions/_lxcri
	rm -rf /usr/lib/lxcri $(VENV_PREFIX)
	-rmdir -p $(LOCAL_SHARE)/bash-completion/completions $(LOCAL_SHARE)/zsh/site-functions 2>/dev/null
	if [ -n "$(PURGE)" ]; then \
		rm -f /etc/lxcri/config.yaml; rmdir /etc/lxcri 2>/dev/null || true; \
		sh debian/lxcri.postrm purge; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
