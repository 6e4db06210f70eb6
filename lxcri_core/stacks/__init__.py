"""Compose-like stacks: several containers from one YAML file, started in order.

``parse`` reads a stack file (a subset of the compose format, every other key
refused by name) into ``model``'s dataclasses; ``plan`` orders the services by
``depends_on`` and names their containers and volumes; ``apply`` brings a
stack up and down through the ``Backend`` protocol, so a stack runs on every
backend. No click or rich here: the CLI is ``lxcri_pve.cli.stack_cmds``.
"""
