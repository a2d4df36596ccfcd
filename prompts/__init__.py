"""The audio prompts: built from the Persian catalog, checked against the menu."""
