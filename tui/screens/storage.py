"""Storage: ZFS pools, layer chains and the clones (containers) on each layer, as a tree;
overlay/dir layers and Proxmox storages as tables; what a prune would free."""

from __future__ import annotations

from lxcri_tui.fmt import safe
from lxcri_tui.screens.base import DashScreen
from lxcri_tui.source import Node, StorageView
from lxcri_tui.widgets import SectionView
from textual import work
from textual.app import ComposeResult
from textual.widgets import Label, Tree
from textual.widgets.tree import TreeNode


def _add(parent: TreeNode[None], nodes: tuple[Node, ...]) -> None:
    for n in nodes:
        if n.children:
            _add(parent.add(safe(n.label), expand=True), n.children)
        else:
            parent.add_leaf(safe(n.label))


class StorageScreen(DashScreen):
    TITLE = "Storage"
    AUTO_FOCUS = "Tree"
    DEFAULT_CSS = """
    StorageScreen Tree { height: 1fr; }
    StorageScreen SectionView { height: 1fr; }
    StorageScreen #prune { padding: 0 1; background: $boost; width: 100%; }
    """

    def body(self) -> ComposeResult:
        tree: Tree[None] = Tree("ZFS", id="zfs")
        tree.show_root = False
        yield tree
        yield Label("", id="prune")
        yield SectionView()

    def refresh_data(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="storage")
    def load(self) -> None:
        try:
            view = self.source.storage()
        except Exception as e:
            self.failed("reading the storage failed", e)
            return
        self.app.call_from_thread(self._show, view)

    def _show(self, view: StorageView) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        _add(tree.root, view.tree or (Node("no ZFS pools"),))
        tree.root.expand()
        self.query_one("#prune", Label).update(safe(view.prune))
        self.query_one(SectionView).show(view.sections)
