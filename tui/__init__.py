"""lxcri_tui: the Textual dashboard. Calls lxcri_core and the backends only."""
