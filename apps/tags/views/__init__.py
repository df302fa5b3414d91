"""Tag pages, one module per concept: vocabularies and types, the item tag editor, rules, bulk edits."""
